"""Webhooks: the device's events (RabbitMQ's pi-im.events) delivered to operators' HTTP(S)
endpoints, signed, retried through RabbitMQ and recorded. The console manages endpoints
(services/webhooks.py); the dispatcher (`python -m pi_im_admin.webhooks`, the
pi-im-webhooks service) delivers."""
