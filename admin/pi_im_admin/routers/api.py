"""The REST API: everything the pages do, for scripts, with bearer tokens scoped to a role."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status

from .. import models
from ..auth import ContextDep, api, bot_name
from ..errors import NotFound, Problem
from ..permissions import Permission as P
from ..security import Principal
from ..services import (
    assistant,
    backups,
    bots,
    dashboard,
    groups,
    invites,
    moderation,
    operators,
    users,
    webhooks,
)
from ..web import invite_url

_errors: dict[int | str, dict[str, object]] = {
    code: {"model": models.Error} for code in (400, 401, 403, 404, 409, 422, 503)
}
router = APIRouter(prefix="/api/v1", responses=_errors)
NO_CONTENT = Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/users", response_model=models.UserPage, tags=["users"])
async def list_users(
    _: Annotated[Principal, Depends(api(P.VIEW))],
    ctx: ContextDep,
    q: Annotated[str, Query(max_length=1023)] = "",
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
):
    listing = await users.listing(ctx, q, page)
    return listing.__dict__ | {"users": [u.__dict__ for u in listing.users]}


@router.post("/users", response_model=models.Created, status_code=201, tags=["users"])
async def create_user(
    body: models.NewUser,
    who: Annotated[Principal, Depends(api(P.MANAGE_USERS))],
    ctx: ContextDep,
):
    return {"name": await users.create(ctx, who, body.username, body.password, body.group)}


@router.get("/users/{name}", response_model=models.UserDetail, tags=["users"])
async def get_user(
    name: str,
    _: Annotated[Principal, Depends(api(P.VIEW))],
    ctx: ContextDep,
):
    return await users.detail(ctx, name)


@router.delete("/users/{name}", status_code=204, response_class=Response, tags=["users"])
async def delete_user(
    name: str,
    who: Annotated[Principal, Depends(api(P.MANAGE_USERS))],
    ctx: ContextDep,
):
    await users.delete(ctx, who, name)
    return NO_CONTENT


@router.post("/users/{name}/password", status_code=204, response_class=Response, tags=["users"])
async def reset_password(
    name: str,
    body: models.Password,
    who: Annotated[Principal, Depends(api(P.MANAGE_USERS))],
    ctx: ContextDep,
):
    await users.reset_password(ctx, who, name, body.password)
    return NO_CONTENT


@router.post("/users/{name}/kick", response_model=models.Kicked, tags=["users"])
async def kick_user(
    name: str,
    who: Annotated[Principal, Depends(api(P.MANAGE_USERS))],
    ctx: ContextDep,
):
    return {"sessions": await users.kick(ctx, who, name)}


@router.post("/users/{name}/ban", status_code=204, response_class=Response, tags=["users"])
async def ban_user(
    name: str,
    body: models.Ban,
    who: Annotated[Principal, Depends(api(P.MANAGE_USERS))],
    ctx: ContextDep,
):
    await users.ban(ctx, who, name, body.reason)
    return NO_CONTENT


@router.get("/groups", response_model=list[models.Group], tags=["groups"])
async def list_groups(
    _: Annotated[Principal, Depends(api(P.VIEW))],
    ctx: ContextDep,
):
    return await groups.group_listing(ctx)


@router.post("/groups", response_model=models.Created, status_code=201, tags=["groups"])
async def create_group(
    body: models.NewGroup,
    who: Annotated[Principal, Depends(api(P.MANAGE_GROUPS))],
    ctx: ContextDep,
):
    return {"name": await groups.create_group(ctx, who, body.name, body.label, body.description)}


@router.delete("/groups/{name}", status_code=204, response_class=Response, tags=["groups"])
async def delete_group(
    name: str,
    who: Annotated[Principal, Depends(api(P.MANAGE_GROUPS))],
    ctx: ContextDep,
):
    await groups.delete_group(ctx, who, name)
    return NO_CONTENT


@router.put(
    "/groups/{name}/members/{user}", status_code=204, response_class=Response, tags=["groups"]
)
async def add_group_member(
    name: str,
    user: str,
    who: Annotated[Principal, Depends(api(P.MANAGE_GROUPS))],
    ctx: ContextDep,
):
    await groups.set_group_member(ctx, who, name, user, member=True)
    return NO_CONTENT


@router.delete(
    "/groups/{name}/members/{user}", status_code=204, response_class=Response, tags=["groups"]
)
async def remove_group_member(
    name: str,
    user: str,
    who: Annotated[Principal, Depends(api(P.MANAGE_GROUPS))],
    ctx: ContextDep,
):
    await groups.set_group_member(ctx, who, name, user, member=False)
    return NO_CONTENT


@router.get("/rooms", response_model=list[models.Room], tags=["group chats"])
async def list_rooms(
    _: Annotated[Principal, Depends(api(P.VIEW))],
    ctx: ContextDep,
):
    return await groups.room_listing(ctx)


@router.post("/rooms", response_model=models.Created, status_code=201, tags=["group chats"])
async def create_room(
    body: models.NewRoom,
    who: Annotated[Principal, Depends(api(P.MANAGE_GROUPS))],
    ctx: ContextDep,
):
    return {"name": await groups.create_room(ctx, who, body.name, body.title)}


@router.delete("/rooms/{name}", status_code=204, response_class=Response, tags=["group chats"])
async def delete_room(
    name: str,
    who: Annotated[Principal, Depends(api(P.MANAGE_GROUPS))],
    ctx: ContextDep,
):
    await groups.delete_room(ctx, who, name)
    return NO_CONTENT


@router.put(
    "/rooms/{name}/members/{user}", status_code=204, response_class=Response, tags=["group chats"]
)
async def add_room_member(
    name: str,
    user: str,
    who: Annotated[Principal, Depends(api(P.MANAGE_GROUPS))],
    ctx: ContextDep,
):
    await groups.set_room_member(ctx, who, name, user, member=True)
    return NO_CONTENT


@router.delete(
    "/rooms/{name}/members/{user}", status_code=204, response_class=Response, tags=["group chats"]
)
async def remove_room_member(
    name: str,
    user: str,
    who: Annotated[Principal, Depends(api(P.MANAGE_GROUPS))],
    ctx: ContextDep,
):
    await groups.set_room_member(ctx, who, name, user, member=False)
    return NO_CONTENT


@router.get("/invites", response_model=list[models.Invite], tags=["invitations"])
async def list_invites(
    _: Annotated[Principal, Depends(api(P.VIEW))],
    ctx: ContextDep,
):
    return invites.listing(ctx)


@router.post("/invites", response_model=models.CreatedInvite, status_code=201, tags=["invitations"])
async def create_invite(
    body: models.NewInvite,
    request: Request,
    who: Annotated[Principal, Depends(api(P.MANAGE_INVITES))],
    ctx: ContextDep,
):
    invite_id, token = await invites.create(ctx, who, body.hours, body.group, body.max_uses)
    return {"id": invite_id, "token": token, "url": invite_url(request, ctx, token)}


@router.delete(
    "/invites/{invite_id}", status_code=204, response_class=Response, tags=["invitations"]
)
async def revoke_invite(
    invite_id: models.RowId,
    who: Annotated[Principal, Depends(api(P.MANAGE_INVITES))],
    ctx: ContextDep,
):
    invites.revoke(ctx, who, invite_id)
    return NO_CONTENT


@router.post("/broadcast", status_code=204, response_class=Response, tags=["broadcast"])
async def broadcast(
    body: models.Broadcast,
    who: Annotated[Principal, Depends(api(P.BROADCAST))],
    ctx: ContextDep,
):
    await dashboard.broadcast(ctx, who, body.audience, body.subject, body.body)
    return NO_CONTENT


@router.get("/dashboard", response_model=models.Dashboard, tags=["dashboard"])
async def get_dashboard(
    _: Annotated[Principal, Depends(api(P.VIEW))],
    ctx: ContextDep,
):
    return await dashboard.overview(ctx)


@router.post("/backups", response_model=models.BackupStarted, status_code=202, tags=["dashboard"])
async def start_backup(
    who: Annotated[Principal, Depends(api(P.RUN_BACKUPS))],
    ctx: ContextDep,
):
    """Back up now, into the device's backup target; GET /dashboard shows the outcome."""
    return {"message": await backups.run_now(ctx, who)}


@router.get("/reachability", response_model=models.Reachability, tags=["dashboard"])
async def get_reachability(
    _: Annotated[Principal, Depends(api(P.VIEW_REACHABILITY))],
    ctx: ContextDep,
    fresh: bool = False,
):
    """What the device can tell from inside about being reached from the internet (DNS, the
    certificate, the ports it listens on) and the port forwards to set on the router."""
    return await ctx.reachability.report(ctx, fresh)


@router.get("/audit", response_model=list[models.AuditEntry], tags=["audit"])
async def get_audit(
    _: Annotated[Principal, Depends(api(P.VIEW_AUDIT))],
    ctx: ContextDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    # Bounded: SQLite takes 64-bit integers only, and no log is that long.
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
):
    return dashboard.audit_log(ctx, limit, offset)


@router.get("/operators", response_model=list[models.Operator], tags=["operators"])
async def list_operators(
    _: Annotated[Principal, Depends(api(P.MANAGE_OPERATORS))],
    ctx: ContextDep,
):
    return operators.listing(ctx)


@router.post("/operators", response_model=models.Operator, status_code=201, tags=["operators"])
async def create_operator(
    body: models.NewOperator,
    who: Annotated[Principal, Depends(api(P.MANAGE_OPERATORS))],
    ctx: ContextDep,
):
    new_id = operators.create(ctx, who, body.username, body.password, body.role)
    return next(o for o in operators.listing(ctx) if o["id"] == new_id)


@router.patch(
    "/operators/{operator_id}", status_code=204, response_class=Response, tags=["operators"]
)
async def change_operator_role(
    operator_id: models.RowId,
    body: models.RoleChange,
    who: Annotated[Principal, Depends(api(P.MANAGE_OPERATORS))],
    ctx: ContextDep,
):
    operators.set_role(ctx, who, operator_id, body.role)
    return NO_CONTENT


@router.delete(
    "/operators/{operator_id}", status_code=204, response_class=Response, tags=["operators"]
)
async def delete_operator(
    operator_id: models.RowId,
    who: Annotated[Principal, Depends(api(P.MANAGE_OPERATORS))],
    ctx: ContextDep,
):
    operators.delete(ctx, who, operator_id)
    return NO_CONTENT


@router.get("/tokens", response_model=list[models.Token], tags=["tokens"])
async def list_tokens(
    _: Annotated[Principal, Depends(api(P.MANAGE_TOKENS))],
    ctx: ContextDep,
):
    return operators.token_listing(ctx)


@router.post("/tokens", response_model=models.CreatedToken, status_code=201, tags=["tokens"])
async def create_token(
    body: models.NewToken,
    who: Annotated[Principal, Depends(api(P.MANAGE_TOKENS))],
    ctx: ContextDep,
):
    token_id, token = operators.create_token(ctx, who, body.name, body.role, body.days)
    return {"id": token_id, "token": token}


@router.delete("/tokens/{token_id}", status_code=204, response_class=Response, tags=["tokens"])
async def revoke_token(
    token_id: models.RowId,
    who: Annotated[Principal, Depends(api(P.MANAGE_TOKENS))],
    ctx: ContextDep,
):
    operators.revoke_token(ctx, who, token_id)
    return NO_CONTENT


@router.get("/webhooks", response_model=list[models.Webhook], tags=["webhooks"])
async def list_webhooks(
    _: Annotated[Principal, Depends(api(P.VIEW))],
    ctx: ContextDep,
):
    return webhooks.listing(ctx)


@router.post("/webhooks", response_model=models.WebhookSecret, status_code=201, tags=["webhooks"])
async def create_webhook(
    body: models.NewWebhook,
    who: Annotated[Principal, Depends(api(P.MANAGE_INTEGRATIONS))],
    ctx: ContextDep,
):
    """The secret is in this answer only: keep it where the receiver checks signatures."""
    webhook_id, secret = webhooks.create(ctx, who, body.name, body.url, body.events)
    return {"id": webhook_id, "secret": secret}


@router.get("/webhooks/{webhook_id}", response_model=models.Webhook, tags=["webhooks"])
async def get_webhook(
    webhook_id: models.RowId,
    _: Annotated[Principal, Depends(api(P.VIEW))],
    ctx: ContextDep,
):
    return webhooks.detail(ctx, webhook_id)


@router.patch("/webhooks/{webhook_id}", status_code=204, response_class=Response, tags=["webhooks"])
async def change_webhook(
    webhook_id: models.RowId,
    body: models.WebhookChange,
    who: Annotated[Principal, Depends(api(P.MANAGE_INTEGRATIONS))],
    ctx: ContextDep,
):
    webhooks.change(ctx, who, webhook_id, body.url, body.events, body.paused)
    return NO_CONTENT


@router.post(
    "/webhooks/{webhook_id}/secret", response_model=models.WebhookSecret, tags=["webhooks"]
)
async def new_webhook_secret(
    webhook_id: models.RowId,
    who: Annotated[Principal, Depends(api(P.MANAGE_INTEGRATIONS))],
    ctx: ContextDep,
):
    return {"id": webhook_id, "secret": webhooks.new_secret(ctx, who, webhook_id)}


@router.delete(
    "/webhooks/{webhook_id}", status_code=204, response_class=Response, tags=["webhooks"]
)
async def delete_webhook(
    webhook_id: models.RowId,
    who: Annotated[Principal, Depends(api(P.MANAGE_INTEGRATIONS))],
    ctx: ContextDep,
):
    webhooks.delete(ctx, who, webhook_id)
    return NO_CONTENT


@router.get(
    "/webhooks/{webhook_id}/deliveries", response_model=list[models.Delivery], tags=["webhooks"]
)
async def list_deliveries(
    webhook_id: models.RowId,
    _: Annotated[Principal, Depends(api(P.VIEW))],
    ctx: ContextDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
):
    return webhooks.deliveries(ctx, webhook_id, limit)


def _moderation_list(ctx: ContextDep) -> dict[str, object]:
    return {
        "keep_text": moderation.keeps_text(ctx),
        "rules": [rule.__dict__ for rule in moderation.rules(ctx)],
        "max_rules": moderation.MAX_RULES,
        "max_patterns": moderation.MAX_PATTERNS,
    }


@router.get("/bots", response_model=list[models.Bot], tags=["bots"])
async def list_bots(
    _: Annotated[Principal, Depends(api(P.VIEW))],
    ctx: ContextDep,
):
    return bots.listing(ctx)


@router.post("/bots", response_model=models.CreatedBot, status_code=201, tags=["bots"])
async def create_bot(
    body: models.NewBot,
    who: Annotated[Principal, Depends(api(P.MANAGE_INTEGRATIONS))],
    ctx: ContextDep,
):
    """The bot's token and its webhook's secret are in this answer only."""
    return await bots.create(ctx, who, body.name, body.url)


@router.delete("/bots/{name}", status_code=204, response_class=Response, tags=["bots"])
async def delete_bot(
    name: str,
    who: Annotated[Principal, Depends(api(P.MANAGE_INTEGRATIONS))],
    ctx: ContextDep,
):
    await bots.delete(ctx, who, name)
    return NO_CONTENT


@router.post(
    "/bots/{name}/messages",
    status_code=204,
    response_class=Response,
    tags=["bots"],
    responses={429: {"model": models.Error}},
)
async def send_as_bot(
    body: models.BotMessage,
    bot: Annotated[str, Depends(bot_name)],
    ctx: ContextDep,
):
    """A reply from the bot, with the bot's own token (not an operator's)."""
    await bots.send(ctx, bot, body.to, body.text)
    return NO_CONTENT


@router.get("/assistant", response_model=models.Assistant, tags=["bots"])
async def get_assistant(
    _: Annotated[Principal, Depends(api(P.VIEW))],
    ctx: ContextDep,
):
    made = assistant.current(ctx)
    if made is None:
        raise NotFound("There is no assistant.")
    return made


@router.put("/assistant", response_model=models.Assistant, tags=["bots"])
async def configure_assistant(
    body: models.AssistantSettings,
    who: Annotated[Principal, Depends(api(P.MANAGE_INTEGRATIONS))],
    ctx: ContextDep,
):
    """Makes the assistant or changes it. The key is kept as a device secret, never shown."""
    return await assistant.configure(
        ctx,
        who,
        body.name or "",
        body.url,
        body.model,
        body.prompt,
        body.per_hour,
        body.turns,
        body.key,
    )


@router.delete("/assistant", status_code=204, response_class=Response, tags=["bots"])
async def remove_assistant(
    who: Annotated[Principal, Depends(api(P.MANAGE_INTEGRATIONS))],
    ctx: ContextDep,
):
    await assistant.remove(ctx, who)
    return NO_CONTENT


@router.get("/moderation", response_model=models.ModerationList, tags=["moderation"])
async def get_moderation(
    _: Annotated[Principal, Depends(api(P.VIEW_MODERATION))],
    ctx: ContextDep,
):
    return _moderation_list(ctx)


@router.post(
    "/moderation/rules", response_model=models.RuleIds, status_code=201, tags=["moderation"]
)
async def add_moderation_rule(
    body: models.NewRule,
    who: Annotated[Principal, Depends(api(P.MANAGE_MODERATION))],
    ctx: ContextDep,
):
    """Applied to the next message on: ejabberd checks the rule (a pattern must compile) and
    takes it, or nothing changes."""
    return {"ids": [await moderation.add(ctx, who, body.kind, body.text, body.action)]}


@router.post(
    "/moderation/words", response_model=models.RuleIds, status_code=201, tags=["moderation"]
)
async def add_moderation_words(
    body: models.NewWords,
    who: Annotated[Principal, Depends(api(P.MANAGE_MODERATION))],
    ctx: ContextDep,
):
    """All the words or none; words already in the list are left as they are."""
    return {"ids": await moderation.add_words(ctx, who, body.words, body.action)}


@router.delete(
    "/moderation/rules/{rule_id}", status_code=204, response_class=Response, tags=["moderation"]
)
async def remove_moderation_rule(
    rule_id: models.RowId,
    who: Annotated[Principal, Depends(api(P.MANAGE_MODERATION))],
    ctx: ContextDep,
):
    await moderation.remove(ctx, who, rule_id)
    return NO_CONTENT


@router.put("/moderation/keep-text", response_model=models.ModerationList, tags=["moderation"])
async def keep_moderation_text(
    body: models.KeepText,
    who: Annotated[Principal, Depends(api(P.KEEP_MESSAGE_TEXT))],
    ctx: ContextDep,
):
    """The owner's choice: records of blocked and masked messages keep what was said."""
    await moderation.keep_text(ctx, who, body.keep_text)
    return _moderation_list(ctx)


@router.get(
    "/moderation/records", response_model=list[models.ModerationRecord], tags=["moderation"]
)
async def list_moderation_records(
    _: Annotated[Principal, Depends(api(P.VIEW_MODERATION))],
    ctx: ContextDep,
    kind: Annotated[Literal["blocked", "masked", "report"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
):
    """The latest first: blocked and masked messages, spam reports."""
    return moderation.records(ctx, (kind,) if kind else moderation.RECORD_KINDS, limit)


@router.get("/health", response_model=models.Health, tags=["health"])
async def health(
    ctx: ContextDep,
):
    try:
        await ctx.ejabberd.call("status")
    except Problem:
        return {"status": "degraded", "ejabberd": False}
    return {"status": "ok", "ejabberd": True}
