"""Invitation links: an operator makes one (with expiry, optional group, number of uses),
the invited person redeems it on the public sign-up page. In-band registration stays off."""

from __future__ import annotations

import time

from .. import validation
from ..context import Context
from ..errors import Forbidden, NotFound, Problem
from ..permissions import Role
from ..security import Principal, digest, new_token
from . import events, users


def listing(ctx: Context) -> list[dict[str, object]]:
    rows = ctx.db.all(
        "SELECT id, created_by, created_at, expires_at, group_name, max_uses, uses, "
        "revoked FROM invites ORDER BY id DESC"
    )
    now = time.time()
    return [
        dict(r)
        | {"active": not r["revoked"] and r["expires_at"] > now and r["uses"] < r["max_uses"]}
        for r in rows
    ]


async def create(
    ctx: Context, actor: Principal, hours: int, group: str = "", max_uses: int = 1
) -> tuple[int, str]:
    """A new invitation; its token is returned once and only its hash is kept."""
    if not 1 <= hours <= 24 * 90:
        raise Problem("An invitation must expire within 1 hour to 90 days.")
    if not 1 <= max_uses <= 1000:
        raise Problem("An invitation can be used 1 to 1000 times.")
    if group:
        group = validation.name(group, "group")
        if group not in await ctx.ejabberd.groups():
            raise NotFound(f"There is no group {group}.")
    token = new_token("i")
    invite_id = ctx.db.run(
        "INSERT INTO invites (token_hash, created_by, created_at, expires_at, group_name, max_uses)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        digest(token),
        actor.name,
        time.time(),
        time.time() + hours * 3600,
        group or None,
        max_uses,
    )
    ctx.db.audit(actor.name, "invite.create", f"#{invite_id}", f"hours={hours} group={group}")
    return invite_id, token


def revoke(ctx: Context, actor: Principal, invite_id: int) -> None:
    if ctx.db.one("SELECT id FROM invites WHERE id = ?", invite_id) is None:
        raise NotFound(f"There is no invitation #{invite_id}.")
    ctx.db.run("UPDATE invites SET revoked = 1 WHERE id = ?", invite_id)
    ctx.db.audit(actor.name, "invite.revoke", f"#{invite_id}")


def lookup(ctx: Context, token: str) -> dict[str, object]:
    """The invitation behind a token, if it can still be used."""
    row = ctx.db.one("SELECT * FROM invites WHERE token_hash = ?", digest(token))
    if row is None or row["revoked"]:
        raise Forbidden("This invitation is not valid (unknown or revoked).")
    if row["expires_at"] <= time.time():
        raise Forbidden("This invitation has expired.")
    if row["uses"] >= row["max_uses"]:
        raise Forbidden("This invitation has already been used.")
    return dict(row)


async def redeem(ctx: Context, token: str, raw_name: str, password: str) -> str:
    invite = lookup(ctx, token)
    # Reserve a use first so two people cannot both take the last one.
    with ctx.db.transaction() as conn:
        taken = conn.execute(
            "UPDATE invites SET uses = uses + 1 WHERE id = ? AND uses < max_uses", (invite["id"],)
        ).rowcount
    if not taken:
        raise Forbidden("This invitation has already been used.")
    actor = Principal(f"invite:#{invite['id']}", Role.VIEWER)
    try:
        name = await users.create(ctx, actor, raw_name, password, str(invite["group_name"] or ""))
    except Exception:
        ctx.db.run("UPDATE invites SET uses = uses - 1 WHERE id = ?", invite["id"])
        raise
    events.emit(
        ctx,
        "invitation.used",
        {
            "invitation": invite["id"],
            "jid": f"{name}@{ctx.ejabberd.domain}",
            "created_by": invite["created_by"],
            "group": invite["group_name"],
        },
    )
    return name
