"""The XMPP apps a new member is pointed to, by the device they will chat on: the ones that
work with the appliance as it is set up (SCRAM over TLS, file sharing, history)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class App:
    name: str
    platforms: str
    url: str
    # Where to get it, when not from its website: (label, link)
    stores: tuple[tuple[str, str], ...] = ()


APPS = (
    App(
        "Conversations",
        "Android",
        "https://conversations.im/",
        (
            ("F-Droid", "https://f-droid.org/packages/eu.siacs.conversations/"),
            ("Google Play", "https://play.google.com/store/apps/details?id=eu.siacs.conversations"),
        ),
    ),
    App("Monal", "iPhone, iPad and Mac", "https://monal-im.org/"),
    App("Siskin IM", "iPhone and iPad", "https://siskin.im/"),
    App("Gajim", "Windows and Linux", "https://gajim.org/download/"),
    App("Dino", "Linux", "https://dino.im/"),
)
