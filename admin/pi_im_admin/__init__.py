"""pi-im admin service: a console and REST API for the appliance's XMPP users, groups,
invitations and operators, in front of ejabberd's admin API."""

__version__ = "0.1.0"
