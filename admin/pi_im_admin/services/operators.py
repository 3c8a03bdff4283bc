"""Console operators and API tokens. Nobody can hand out more rights than they have."""

from __future__ import annotations

import time

from .. import validation
from ..context import Context
from ..errors import Conflict, Forbidden, NotFound, Problem
from ..permissions import RANK, Role, may_assign
from ..security import Principal, digest, hash_password, new_token, verify_password


def _role(raw: str) -> Role:
    try:
        return Role(raw)
    except ValueError:
        raise Problem(f"Unknown role {raw!r}: use one of {', '.join(Role)}.") from None


def listing(ctx: Context) -> list[dict[str, object]]:
    return [
        dict(r)
        for r in ctx.db.all(
            "SELECT id, username, role, created_at FROM operators ORDER BY username"
        )
    ]


def create(ctx: Context, actor: Principal, raw_name: str, password: str, raw_role: str) -> int:
    name = validation.name(raw_name, "operator")
    role = _role(raw_role)
    if not may_assign(actor.role, role):
        raise Forbidden(f"A {actor.role} cannot create a {role}.")
    validation.password(password, name)
    if ctx.db.one("SELECT id FROM operators WHERE username = ?", name):
        raise Conflict(f"The operator {name} already exists.")
    operator_id = ctx.db.run(
        "INSERT INTO operators (username, password_hash, role, created_at) VALUES (?, ?, ?, ?)",
        name,
        hash_password(password),
        role,
        time.time(),
    )
    ctx.db.audit(actor.name, "operator.create", name, f"role={role}")
    return operator_id


def _target(ctx: Context, actor: Principal, operator_id: int) -> dict[str, object]:
    row = ctx.db.one("SELECT id, username, role FROM operators WHERE id = ?", operator_id)
    if row is None:
        raise NotFound(f"There is no operator #{operator_id}.")
    if RANK[Role(row["role"])] > RANK[actor.role]:
        raise Forbidden(f"A {actor.role} cannot change a {row['role']}.")
    return dict(row)


def _owners(ctx: Context) -> int:
    return int(ctx.db.one("SELECT COUNT(*) AS n FROM operators WHERE role = 'owner'")["n"])


def set_role(ctx: Context, actor: Principal, operator_id: int, raw_role: str) -> None:
    target = _target(ctx, actor, operator_id)
    role = _role(raw_role)
    if not may_assign(actor.role, role):
        raise Forbidden(f"A {actor.role} cannot make a {role}.")
    if target["role"] == Role.OWNER and role != Role.OWNER and _owners(ctx) == 1:
        raise Forbidden("The last owner cannot be demoted.")
    ctx.db.run("UPDATE operators SET role = ? WHERE id = ?", role, operator_id)
    ctx.db.run("DELETE FROM sessions WHERE operator_id = ?", operator_id)
    ctx.db.audit(actor.name, "operator.role", str(target["username"]), f"role={role}")


def delete(ctx: Context, actor: Principal, operator_id: int) -> None:
    target = _target(ctx, actor, operator_id)
    if operator_id == actor.operator_id:
        raise Forbidden("You cannot delete yourself.")
    if target["role"] == Role.OWNER and _owners(ctx) == 1:
        raise Forbidden("The last owner cannot be deleted.")
    ctx.db.run("DELETE FROM operators WHERE id = ?", operator_id)
    ctx.db.audit(actor.name, "operator.delete", str(target["username"]))


def authenticate(ctx: Context, name: str, password: str) -> int | None:
    """The operator's id when the password is theirs. An unknown name costs a hash check all
    the same, so timing does not tell which names exist."""
    row = ctx.db.one("SELECT id, password_hash FROM operators WHERE username = ?", name)
    if not verify_password(row["password_hash"] if row else None, password) or row is None:
        return None
    return int(row["id"])


def ensure_owner(ctx: Context, name: str, password: str) -> bool:
    """First start on a device: create the owner when there is none. True if created."""
    if _owners(ctx):
        return False
    ctx.db.run(
        "INSERT INTO operators (username, password_hash, role, created_at) VALUES (?, ?, ?, ?)",
        validation.name(name, "operator"),
        hash_password(password),
        Role.OWNER,
        time.time(),
    )
    ctx.db.audit("device", "operator.create", name, "role=owner (first start)")
    return True


MAX_TOKEN_DAYS = 365


def token_listing(ctx: Context) -> list[dict[str, object]]:
    return [
        dict(r)
        for r in ctx.db.all(
            "SELECT id, name, role, created_by, created_at, expires_at, "
            "last_used_at FROM api_tokens WHERE expires_at > ? ORDER BY id",
            time.time(),
        )
    ]


def create_token(
    ctx: Context, actor: Principal, raw_name: str, raw_role: str, days: int = 30
) -> tuple[int, str]:
    """A token acting for the operator behind `actor`: it goes when that operator goes, never
    has more than their role, and ends within `days` (and no later than a token making it)."""
    name = validation.name(raw_name, "token")
    role = _role(raw_role)
    if not may_assign(actor.role, role):
        raise Forbidden(f"A {actor.role} cannot create a {role} token.")
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise Problem(f"A token must expire within 1 to {MAX_TOKEN_DAYS} days.")
    if actor.operator_id is None:
        raise Forbidden("Only an operator can create tokens.")
    now = time.time()
    expires_at = min(now + days * 86400, actor.expires_at or float("inf"))
    token = new_token("pia")
    token_id = ctx.db.run(
        "INSERT INTO api_tokens (name, token_hash, role, created_by, created_at, operator_id, "
        "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        name,
        digest(token),
        role,
        actor.name,
        now,
        actor.operator_id,
        expires_at,
    )
    ctx.db.audit(actor.name, "token.create", name, f"role={role} days={days}")
    return token_id, token


def revoke_token(ctx: Context, actor: Principal, token_id: int) -> None:
    row = ctx.db.one("SELECT name, role FROM api_tokens WHERE id = ?", token_id)
    if row is None:
        raise NotFound(f"There is no token #{token_id}.")
    if not may_assign(actor.role, Role(row["role"])):
        raise Forbidden(f"A {actor.role} cannot revoke a {row['role']} token.")
    ctx.db.run("DELETE FROM api_tokens WHERE id = ?", token_id)
    ctx.db.audit(actor.name, "token.revoke", str(row["name"]))
