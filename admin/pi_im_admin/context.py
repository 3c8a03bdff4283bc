"""What every request handler works with: the database, ejabberd and the settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from .db import Database
from .ejabberd import Ejabberd
from .security import ApiTokens, Sessions, Throttle
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
