"""Shared roster groups (everyone in a group sees each other) and group chats (MUC rooms)."""

from __future__ import annotations

from .. import validation
from ..context import Context
from ..errors import Conflict, NotFound
from ..security import Principal
from . import users


async def _group(ctx: Context, raw: str) -> str:
    group = validation.name(raw, "group")
    if group not in await ctx.ejabberd.groups():
        raise NotFound(f"There is no group {group}.")
    return group


async def _room(ctx: Context, raw: str) -> str:
    room = validation.name(raw, "group chat")
    if room not in await ctx.ejabberd.rooms():
        raise NotFound(f"There is no group chat {room}.")
    return room


async def group_listing(ctx: Context) -> list[dict[str, object]]:
    found = []
    for group in await ctx.ejabberd.groups():
        info = await ctx.ejabberd.group_info(group)
        members = await ctx.ejabberd.group_members(group)
        found.append({"name": group, "label": info.get("label", group), "members": members})
    return found


async def group_detail(ctx: Context, raw: str) -> dict[str, object]:
    group = await _group(ctx, raw)
    info = await ctx.ejabberd.group_info(group)
    return {
        "name": group,
        "label": info.get("label", group),
        "description": info.get("description", ""),
        "members": await ctx.ejabberd.group_members(group),
    }


async def create_group(
    ctx: Context, actor: Principal, raw: str, label: str, description: str = ""
) -> str:
    group = validation.name(raw, "group")
    label = validation.text(label, "label", 100)
    description = validation.text(description, "description", 500, multiline=True)
    if group in await ctx.ejabberd.groups():
        raise Conflict(f"The group {group} already exists.")
    await ctx.ejabberd.create_group(group, label or group, description)
    ctx.db.audit(actor.name, "group.create", group)
    return group


async def delete_group(ctx: Context, actor: Principal, raw: str) -> None:
    group = await _group(ctx, raw)
    await ctx.ejabberd.delete_group(group)
    ctx.db.audit(actor.name, "group.delete", group)


async def set_group_member(
    ctx: Context, actor: Principal, raw_group: str, raw_user: str, member: bool
) -> None:
    group = await _group(ctx, raw_group)
    user = await users.require(ctx, raw_user)
    current = await ctx.ejabberd.group_members(group)
    if member and user in current:
        raise Conflict(f"{user} is already in {group}.")
    if not member and user not in current:
        raise NotFound(f"{user} is not in {group}.")
    if member:
        await ctx.ejabberd.add_to_group(user, group)
    else:
        await ctx.ejabberd.remove_from_group(user, group)
    ctx.db.audit(actor.name, "group.add" if member else "group.remove", group, user)


async def room_listing(ctx: Context) -> list[dict[str, object]]:
    return [
        {"name": room, "members": await ctx.ejabberd.room_members(room)}
        for room in await ctx.ejabberd.rooms()
    ]


async def create_room(ctx: Context, actor: Principal, raw: str, title: str) -> str:
    room = validation.name(raw, "group chat")
    title = validation.text(title, "title", 100)
    if room in await ctx.ejabberd.rooms():
        raise Conflict(f"The group chat {room} already exists.")
    await ctx.ejabberd.create_room(room, title or room)
    ctx.db.audit(actor.name, "room.create", room)
    return room


async def delete_room(ctx: Context, actor: Principal, raw: str) -> None:
    room = await _room(ctx, raw)
    await ctx.ejabberd.destroy_room(room)
    ctx.db.audit(actor.name, "room.delete", room)


async def set_room_member(
    ctx: Context, actor: Principal, raw_room: str, raw_user: str, member: bool
) -> None:
    room = await _room(ctx, raw_room)
    user = await users.require(ctx, raw_user)
    await ctx.ejabberd.set_room_member(room, user, member)
    ctx.db.audit(actor.name, "room.add" if member else "room.remove", room, user)
