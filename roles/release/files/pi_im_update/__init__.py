"""pi-im-update: a newer release of the appliance applied by the device to itself."""
