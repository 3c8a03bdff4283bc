"""Errors a user can act on. Pages show them as a message, the API as JSON with a 4xx."""

from __future__ import annotations


class Problem(Exception):
    """A refused request: nothing was changed."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(Problem):
    status = 404


class Conflict(Problem):
    status = 409


class Forbidden(Problem):
    status = 403


class Unavailable(Problem):
    """ejabberd (or another service the console relies on) did not answer."""

    status = 503


class TooMany(Problem):
    """Too many requests of one kind in a while: try again later."""

    status = 429


class StorageFull(Problem):
    """The file system holding the console's database has no room (SQLite's SQLITE_FULL)."""

    status = 507

    def __init__(self) -> None:
        super().__init__(
            "The device's storage is full, so nothing was saved. Free some space (the "
            "dashboard says how much is left) and try again."
        )
