"""XMPP accounts, always through ejabberd's API. Each change is checked first, so a refused
request changes nothing, and is written to the audit log."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .. import validation
from ..context import Context
from ..errors import Conflict, Forbidden, NotFound
from ..security import Principal


@dataclass(frozen=True)
class UserRow:
    name: str
    online: bool
    banned: bool


@dataclass(frozen=True)
class UserPage:
    users: list[UserRow]
    total: int
    page: int
    pages: int
    query: str


async def listing(ctx: Context, query: str = "", page: int = 1, per_page: int = 50) -> UserPage:
    names = await ctx.ejabberd.users()
    query = query.strip().lower()
    if query:
        names = [n for n in names if query in n]
    pages = max(1, -(-len(names) // per_page))
    page = min(max(1, page), pages)
    shown = names[(page - 1) * per_page : page * per_page]
    online = await ctx.ejabberd.online() if shown else set()
    banned = {r["username"] for r in ctx.db.all("SELECT username FROM bans")}
    rows = [UserRow(n, n in online, n in banned) for n in shown]
    return UserPage(rows, len(names), page, pages, query)


async def require(ctx: Context, raw_name: str) -> str:
    name = validation.localpart(raw_name)
    if not await ctx.ejabberd.exists(name):
        raise NotFound(f"There is no user {name}@{ctx.ejabberd.domain}.")
    return name


def _refuse_protected(ctx: Context, name: str) -> None:
    """Accounts of ejabberd's admin ACL and the console's own are never changed from here:
    compared as ejabberd compares them (nodeprep), so no spelling of `admin` gets through."""
    if name in {validation.nodeprep(account) for account in ctx.settings.protected_accounts}:
        raise Forbidden(f"{name} is one of the server's own accounts; it cannot be changed here.")


async def create(
    ctx: Context, actor: Principal, raw_name: str, password: str, group: str = ""
) -> str:
    name = validation.localpart(raw_name)
    validation.password(password, name)
    if group:
        group = validation.name(group, "group")
        if group not in await ctx.ejabberd.groups():
            raise NotFound(f"There is no group {group}.")
    if await ctx.ejabberd.exists(name):
        raise Conflict(f"The user {name}@{ctx.ejabberd.domain} already exists.")
    await ctx.ejabberd.register(name, password)
    if group:
        try:
            await ctx.ejabberd.add_to_group(name, group)
        except Exception:
            await ctx.ejabberd.unregister(name)  # no half-made account
            raise
    ctx.db.audit(actor.name, "user.create", name, f"group={group}" if group else "")
    return name


async def delete(ctx: Context, actor: Principal, raw_name: str) -> None:
    name = await require(ctx, raw_name)
    _refuse_protected(ctx, name)
    await ctx.ejabberd.unregister(name)
    ctx.db.run("DELETE FROM bans WHERE username = ?", name)
    ctx.db.audit(actor.name, "user.delete", name)


async def reset_password(ctx: Context, actor: Principal, raw_name: str, password: str) -> None:
    name = await require(ctx, raw_name)
    _refuse_protected(ctx, name)
    validation.password(password, name)
    await ctx.ejabberd.set_password(name, password)
    # A new password is how a banned account is let back in.
    ctx.db.run("DELETE FROM bans WHERE username = ?", name)
    ctx.db.audit(actor.name, "user.reset_password", name)


async def kick(ctx: Context, actor: Principal, raw_name: str) -> int:
    name = await require(ctx, raw_name)
    _refuse_protected(ctx, name)
    count = await ctx.ejabberd.kick(name)
    ctx.db.audit(actor.name, "user.kick", name, f"sessions={count}")
    return count


async def ban(ctx: Context, actor: Principal, raw_name: str, reason: str) -> None:
    reason = validation.text(reason, "reason", 500) or "banned by an operator"
    name = await require(ctx, raw_name)
    _refuse_protected(ctx, name)
    await ctx.ejabberd.ban(name, reason)
    ctx.db.run(
        "INSERT OR REPLACE INTO bans (username, reason, banned_by, banned_at) VALUES (?, ?, ?, ?)",
        name,
        reason,
        actor.name,
        time.time(),
    )
    ctx.db.audit(actor.name, "user.ban", name, reason)


async def detail(ctx: Context, raw_name: str) -> dict[str, object]:
    name = await require(ctx, raw_name)
    ban_row = ctx.db.one("SELECT reason, banned_by, banned_at FROM bans WHERE username = ?", name)
    return {
        "name": name,
        "jid": f"{name}@{ctx.ejabberd.domain}",
        "sessions": await ctx.ejabberd.sessions(name),
        "banned": dict(ban_row) if ban_row else None,
    }
