"""The role matrix: what each role may do, and whom it may create."""

from __future__ import annotations

import pytest

from pi_im_admin.permissions import GRANTS, Permission, Role, allows, may_assign

CHANGES = set(Permission) - {Permission.VIEW}


def test_viewer_only_reads() -> None:
    assert GRANTS[Role.VIEWER] == {Permission.VIEW}
    assert not any(allows(Role.VIEWER, p) for p in CHANGES)


def test_operator_manages_users_not_operators_or_tokens() -> None:
    assert allows(Role.OPERATOR, Permission.MANAGE_USERS)
    assert allows(Role.OPERATOR, Permission.MANAGE_GROUPS)
    assert not allows(Role.OPERATOR, Permission.MANAGE_OPERATORS)
    assert not allows(Role.OPERATOR, Permission.MANAGE_TOKENS)
    assert not allows(Role.OPERATOR, Permission.VIEW_AUDIT)
    # How the device is reached (its addresses, ports, certificate) is for admins.
    assert not allows(Role.OPERATOR, Permission.VIEW_REACHABILITY)
    assert allows(Role.ADMIN, Permission.VIEW_REACHABILITY)


def test_admins_back_up_only_owners_choose_where_and_see_the_passphrase() -> None:
    assert allows(Role.ADMIN, Permission.RUN_BACKUPS)
    assert not allows(Role.OPERATOR, Permission.RUN_BACKUPS)
    assert not allows(Role.ADMIN, Permission.MANAGE_BACKUPS)
    assert allows(Role.OWNER, Permission.MANAGE_BACKUPS)


def test_admins_manage_webhooks_operators_do_not() -> None:
    assert allows(Role.ADMIN, Permission.MANAGE_INTEGRATIONS)
    assert not allows(Role.OPERATOR, Permission.MANAGE_INTEGRATIONS)
    assert not allows(Role.VIEWER, Permission.MANAGE_INTEGRATIONS)


def test_operators_see_moderation_admins_set_the_list_the_owner_keeps_the_text() -> None:
    assert allows(Role.OPERATOR, Permission.VIEW_MODERATION)
    assert not allows(Role.VIEWER, Permission.VIEW_MODERATION)
    assert allows(Role.ADMIN, Permission.MANAGE_MODERATION)
    assert not allows(Role.OPERATOR, Permission.MANAGE_MODERATION)
    assert not allows(Role.ADMIN, Permission.KEEP_MESSAGE_TEXT)
    assert allows(Role.OWNER, Permission.KEEP_MESSAGE_TEXT)


def test_owner_may_do_everything() -> None:
    assert GRANTS[Role.OWNER] == set(Permission)


@pytest.mark.parametrize(
    ("actor", "target", "allowed"),
    [
        (Role.OWNER, Role.OWNER, True),
        (Role.ADMIN, Role.OWNER, False),
        (Role.ADMIN, Role.ADMIN, True),
        (Role.OPERATOR, Role.ADMIN, False),
        (Role.VIEWER, Role.VIEWER, True),
    ],
)
def test_no_one_hands_out_more_than_they_have(actor: Role, target: Role, allowed: bool) -> None:
    assert may_assign(actor, target) is allowed
