"""Roles and what each may do. Every page and API endpoint names the permission it needs."""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    VIEW = "view"
    MANAGE_USERS = "manage_users"
    MANAGE_GROUPS = "manage_groups"
    MANAGE_INVITES = "manage_invites"
    BROADCAST = "broadcast"
    VIEW_AUDIT = "view_audit"
    # How the device is reached from outside: its addresses, ports and certificate.
    VIEW_REACHABILITY = "view_reachability"
    MANAGE_OPERATORS = "manage_operators"
    MANAGE_TOKENS = "manage_tokens"
    # The backups page and "back up now"; where backups go, the passphrase and a download of
    # everything (secrets included) are the owner's alone.
    RUN_BACKUPS = "run_backups"
    MANAGE_BACKUPS = "manage_backups"
    # Webhooks: what of the device's events leaves it, and for whom (their deliveries are
    # for everyone with VIEW to see).
    MANAGE_INTEGRATIONS = "manage_integrations"
    # Moderation: what was blocked and who reported whom names people, so viewers do not
    # see it; the list is the admins'; whether records keep what was said, the owner's.
    VIEW_MODERATION = "view_moderation"
    MANAGE_MODERATION = "manage_moderation"
    KEEP_MESSAGE_TEXT = "keep_message_text"


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"
    OWNER = "owner"


_OPERATOR = {
    Permission.VIEW,
    Permission.MANAGE_USERS,
    Permission.MANAGE_GROUPS,
    Permission.MANAGE_INVITES,
    Permission.BROADCAST,
    Permission.VIEW_MODERATION,
}
_ADMIN = _OPERATOR | {
    Permission.VIEW_AUDIT,
    Permission.VIEW_REACHABILITY,
    Permission.MANAGE_OPERATORS,
    Permission.MANAGE_TOKENS,
    Permission.RUN_BACKUPS,
    Permission.MANAGE_INTEGRATIONS,
    Permission.MANAGE_MODERATION,
}

GRANTS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.VIEW}),
    Role.OPERATOR: frozenset(_OPERATOR),
    Role.ADMIN: frozenset(_ADMIN),
    Role.OWNER: frozenset(Permission),
}
RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2, Role.OWNER: 3}


def allows(role: Role, permission: Permission) -> bool:
    return permission in GRANTS[role]


def may_assign(actor: Role, target: Role) -> bool:
    """Operators and tokens can only be given a role up to the actor's own; only an owner
    makes owners."""
    return RANK[target] <= RANK[actor]
