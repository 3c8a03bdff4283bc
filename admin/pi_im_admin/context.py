"""What every request handler works with: the database, ejabberd and the settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from .db import Database
from .ejabberd import Ejabberd
from .security import ApiTokens, AttemptLimiter, Sessions, Throttle
from .services.reachability import Checks
from .settings import Settings


@dataclass
class Context:
    settings: Settings
    db: Database
    ejabberd: Ejabberd
    sessions: Sessions
    tokens: ApiTokens
    signins: Throttle
    redemptions: Throttle
    reachability: Checks = field(default_factory=Checks)
    # What each bot sent in the last minute: a bot in a loop cannot flood its users.
    bot_sends: AttemptLimiter = field(default_factory=lambda: AttemptLimiter(300, window=60))
