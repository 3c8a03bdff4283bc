"""The options an image is built with, as the release role records them on it: the
ansible-playbook arguments' extra vars (-e key=value, -e '{json}', -e @file), read by Ansible's
own parser, printed as {"release_options": {...}} for one more -e. A device built from the
image applies them again when it updates itself (pi-im-update).

    python image/recorded_options.py [ansible-playbook options...] > FILE
"""

from __future__ import annotations

import json
import sys

from ansible import context
from ansible.module_utils.common.collections import ImmutableDict
from ansible.parsing.dataloader import DataLoader
from ansible.utils.vars import load_extra_vars


def extra_vars(args: list[str]) -> list[str]:
    """The values of every -e / --extra-vars among ansible-playbook's arguments."""
    found, rest = [], list(args)
    while rest:
        arg = rest.pop(0)
        if arg in ("-e", "--extra-vars") and rest:
            found.append(rest.pop(0))
        elif arg.startswith("--extra-vars="):
            found.append(arg.split("=", 1)[1])
        elif arg.startswith("-e") and len(arg) > 2:
            found.append(arg[2:])
    return found


def recorded(args: list[str]) -> dict[str, object]:
    context.CLIARGS = ImmutableDict(extra_vars=tuple(extra_vars(args)))
    options = dict(load_extra_vars(DataLoader()))
    # Only the appliance's options; what a builder sets for the build itself is not one.
    return {name: value for name, value in options.items() if not name.startswith("pi_im_")}


if __name__ == "__main__":
    print(json.dumps({"release_options": recorded(sys.argv[1:])}))
