"""What Raspberry Pi Imager (2.x, init_format cloudinit) writes to the boot partition for
its OS customisation: meta-data, user-data, network-config, and two additions to
cmdline.txt. Generated here the way Imager's customization_generator does."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Customisation:
    hostname: str
    user: str
    password: str
    ssh_key: str
    wifi_ssid: str
    wifi_password: str
    wifi_country: str
    timezone: str = "Europe/Berlin"
    keyboard: str = "de"
    instance_id: str = "rpi-imager-1764400000000"

    def password_hash(self) -> str:
        return subprocess.run(
            ["openssl", "passwd", "-5", "-stdin"],
            input=self.password,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    def wifi_psk(self) -> str:
        """Imager stores the WPA pre-shared key (PBKDF2 of passphrase and SSID), not the text."""
        return hashlib.pbkdf2_hmac(
            "sha1", self.wifi_password.encode(), self.wifi_ssid.encode(), 4096, 32
        ).hex()

    def meta_data(self) -> str:
        return f"instance-id: {self.instance_id}\n"

    def user_data(self) -> str:
        return (
            "#cloud-config\n"
            "manage_resolv_conf: false\n\n"
            f"hostname: {self.hostname}\n"
            "manage_etc_hosts: true\n"
            "packages:\n- avahi-daemon\n"
            "apt:\n  preserve_sources_list: true\n  conf: |\n    Acquire {\n"
            '      Check-Date "false";\n    };\n'
            f"timezone: {self.timezone}\n"
            f'keyboard:\n  model: pc105\n  layout: "{self.keyboard}"\n'
            f"user:\n  name: {self.user}\n  shell: /bin/bash\n  lock_passwd: false\n"
            f'  passwd: "{self.password_hash()}"\n'
            f'  ssh_authorized_keys:\n    - "{self.ssh_key}"\n'
            "  sudo: null\n"
            "ssh_pwauth: false\n"
            "runcmd:\n  - [ systemctl, enable, --now, ssh ]\n"
        )

    def network_config(self) -> str:
        return (
            "network:\n  version: 2\n"
            "  ethernets:\n    eth0:\n      dhcp4: true\n      dhcp6: true\n      optional: true\n"
            "  wifis:\n    wlan0:\n      dhcp4: true\n"
            f'      regulatory-domain: "{self.wifi_country}"\n'
            f'      access-points:\n        "{self.wifi_ssid}":\n'
            f'          password: "{self.wifi_psk()}"\n'
            "      optional: true\n"
        )

    def cmdline(self, original: str) -> str:
        return (
            f"{original.strip()} cfg80211.ieee80211_regdom={self.wifi_country} "
            f"ds=nocloud;i={self.instance_id}"
        )
