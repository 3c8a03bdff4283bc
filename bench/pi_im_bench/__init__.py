"""pi-im-bench: an XMPP load generator for the pi-im appliance (and its peers)."""
