"""The console: server-rendered pages, a form per action, Post/Redirect/Get with a notice kept
in the session (never in the URL). A new secret is shown once, in the response that made it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from .. import models, qr
from ..auth import (
    SESSION_COOKIE,
    SIGNIN_CSRF_COOKIE,
    ContextDep,
    form_action,
    page,
)
from ..context import Context
from ..errors import Problem
from ..permissions import Permission as P
from ..permissions import Role
from ..security import Principal, new_token
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
from ..web import client_address, flash, invite_url, render
from ..webhooks.targets import EVENT_TYPES

router = APIRouter(include_in_schema=False)


async def _outcome(action: Callable[[], Awaitable[object] | object]) -> object:
    result = action()
    if isinstance(result, Awaitable):
        result = await result
    return result


async def act(
    request: Request,
    back: str,
    action: Callable[[], Awaitable[object] | object],
    notice: str | Callable[[object], str],
) -> RedirectResponse:
    """Run one change; come back to `back` with what happened (or why it did not)."""
    try:
        result = await _outcome(action)
    except Problem as problem:
        flash(request, "error", problem.message)
    else:
        flash(request, "notice", notice(result) if callable(notice) else notice)
    return RedirectResponse(back, 303)


async def reveal(
    request: Request,
    back: str,
    action: Callable[[], Awaitable[object] | object],
    show: Callable[[object], Awaitable[HTMLResponse]],
) -> Response:
    """Like act, for a change whose result is a secret (a token, an invitation link): it is
    shown in this response alone, never kept in the session nor put in a URL."""
    try:
        result = await _outcome(action)
    except Problem as problem:
        flash(request, "error", problem.message)
        return RedirectResponse(back, 303)
    return await show(result)


# Signing in and out


def signin_page(request: Request, status: int = 200, error: str = "") -> HTMLResponse:
    """The sign-in form with a fresh CSRF token in a cookie of its own."""
    token = new_token("c")
    response = render(request, "signin.html", None, status=status, signin_csrf=token, error=error)
    response.set_cookie(
        SIGNIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.app.state.context.settings.cookie_secure,
        max_age=3600,
    )
    return response


@router.get("/signin")
async def signin_form(request: Request) -> HTMLResponse:
    return signin_page(request)


@router.post("/signin")
async def signin(
    request: Request,
    ctx: ContextDep,
    username: Annotated[str, Form(max_length=1024)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if not csrf or csrf != request.cookies.get(SIGNIN_CSRF_COOKIE):
        return signin_page(request, 400, "The sign-in form expired; try again.")
    name = username.strip().lower()
    keys = {
        "address": client_address(request),
        "name_at_address": f"{client_address(request)} {name[:64]}",
    }
    if ctx.signins.blocked(**keys):
        return signin_page(
            request, 429, "Too many failed sign-ins from here. Wait 15 minutes and try again."
        )
    operator_id = operators.authenticate(ctx, name, password)
    if operator_id is None:
        ctx.signins.failed(**keys)
        ctx.db.audit(name[:64] or "?", "signin.failed", client_address(request))
        return signin_page(request, 401, "Wrong user name or password.")
    session = ctx.sessions.start(operator_id)
    ctx.db.audit(name, "signin", client_address(request))
    response = RedirectResponse("/", 303)
    response.set_cookie(
        SESSION_COOKIE,
        session,
        httponly=True,
        samesite="strict",
        secure=ctx.settings.cookie_secure,
        max_age=ctx.sessions.lifetime,
    )
    response.delete_cookie(SIGNIN_CSRF_COOKIE)
    return response


@router.post("/signout")
async def signout(
    request: Request,
    _: Annotated[Principal, Depends(form_action(P.VIEW))],
    ctx: ContextDep,
) -> Response:
    ctx.sessions.end(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/signin", 303)
    response.delete_cookie(SESSION_COOKIE)
    return response


# Dashboard and audit


@router.get("/")
async def home(
    request: Request,
    who: Annotated[Principal, Depends(page(P.VIEW))],
    ctx: ContextDep,
) -> HTMLResponse:
    overview = await dashboard.overview(ctx)
    return render(
        request,
        "dashboard.html",
        who,
        overview=overview,
        chart=dashboard.chart(overview["history"]),
    )


@router.get("/audit")
async def audit(
    request: Request,
    who: Annotated[Principal, Depends(page(P.VIEW_AUDIT))],
    ctx: ContextDep,
) -> HTMLResponse:
    return render(request, "audit.html", who, entries=dashboard.audit_log(ctx))


@router.get("/reachability")
async def reachability(
    request: Request,
    who: Annotated[Principal, Depends(page(P.VIEW_REACHABILITY))],
    ctx: ContextDep,
) -> HTMLResponse:
    report = await ctx.reachability.report(ctx)
    return render(request, "reachability.html", who, report=report, ports=ctx.settings.ports)


@router.post("/reachability")
async def reachability_again(
    _: Annotated[Principal, Depends(form_action(P.VIEW_REACHABILITY))],
    ctx: ContextDep,
) -> Response:
    await ctx.reachability.report(ctx, fresh=True)
    return RedirectResponse("/reachability", 303)


# Backups


def backups_page(
    request: Request, who: Principal, ctx: Context, status: int = 200, **values: Any
) -> HTMLResponse:
    backups.forget_answers(ctx.settings)
    return render(
        request, "backups.html", who, status, backup=backups.state(ctx.settings), **values
    )


@router.get("/backups")
async def backup_overview(
    request: Request,
    who: Annotated[Principal, Depends(page(P.RUN_BACKUPS))],
    ctx: ContextDep,
) -> HTMLResponse:
    return backups_page(request, who, ctx)


@router.post("/backups/run")
async def backup_now(
    request: Request,
    who: Annotated[Principal, Depends(form_action(P.RUN_BACKUPS))],
    ctx: ContextDep,
) -> Response:
    return await act(request, "/backups", lambda: backups.run_now(ctx, who), str)


@router.post("/backups/target")
async def backup_target(
    request: Request,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_BACKUPS))],
    ctx: ContextDep,
    location: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    return await act(request, "/backups", lambda: backups.set_target(ctx, who, location), str)


@router.post("/backups/passphrase")
async def backup_passphrase(
    request: Request,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_BACKUPS))],
    ctx: ContextDep,
) -> Response:
    async def show(passphrase: Any) -> HTMLResponse:
        return backups_page(request, who, ctx, passphrase=passphrase)

    return await reveal(request, "/backups", lambda: backups.show_passphrase(ctx, who), show)


@router.post("/backups/download")
async def backup_download_prepare(
    request: Request,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_BACKUPS))],
    ctx: ContextDep,
) -> Response:
    return await act(
        request,
        "/backups",
        lambda: backups.prepare_download(ctx, who),
        "The download is being prepared: this page offers it when it is ready.",
    )


@router.get("/backups/download/{name}")
async def backup_download(
    request: Request,
    name: str,
    who: Annotated[Principal, Depends(page(P.MANAGE_BACKUPS))],
    ctx: ContextDep,
) -> Response:
    try:
        filename, content = backups.download(ctx, who, name)
    except Problem as problem:
        flash(request, "error", problem.message)
        return RedirectResponse("/backups", 303)
    return StreamingResponse(
        content,
        media_type="application/x-tar",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


# XMPP users


@router.get("/users")
async def user_list(
    request: Request,
    who: Annotated[Principal, Depends(page(P.VIEW))],
    ctx: ContextDep,
    q: str = "",
    page_number: int = 1,
) -> HTMLResponse:
    listing = await users.listing(ctx, q[:1023], max(1, min(page_number, 100000)))
    return render(
        request,
        "users.html",
        who,
        listing=listing,
        group_names=await ctx.ejabberd.groups(),
        domain=ctx.ejabberd.domain,
    )


@router.post("/users")
async def user_create(
    request: Request,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_USERS))],
    ctx: ContextDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    group: Annotated[str, Form()] = "",
) -> Response:
    return await act(
        request,
        "/users",
        lambda: users.create(ctx, who, username, password, group),
        lambda name: f"Created {name}@{ctx.ejabberd.domain}.",
    )


@router.get("/users/{name}")
async def user_page(
    request: Request,
    name: str,
    who: Annotated[Principal, Depends(page(P.VIEW))],
    ctx: ContextDep,
) -> Response:
    try:
        user = await users.detail(ctx, name)
    except Problem as problem:
        flash(request, "error", problem.message)
        return RedirectResponse("/users", 303)
    return render(request, "user.html", who, user=user)


@router.post("/users/{name}/password")
async def user_password(
    request: Request,
    name: str,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_USERS))],
    ctx: ContextDep,
    password: Annotated[str, Form()] = "",
) -> Response:
    return await act(
        request,
        f"/users/{name}",
        lambda: users.reset_password(ctx, who, name, password),
        "Password changed.",
    )


@router.post("/users/{name}/kick")
async def user_kick(
    request: Request,
    name: str,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_USERS))],
    ctx: ContextDep,
) -> Response:
    return await act(
        request,
        f"/users/{name}",
        lambda: users.kick(ctx, who, name),
        lambda n: f"Disconnected {n} session(s).",
    )


@router.post("/users/{name}/ban")
async def user_ban(
    request: Request,
    name: str,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_USERS))],
    ctx: ContextDep,
    reason: Annotated[str, Form()] = "",
) -> Response:
    return await act(
        request,
        f"/users/{name}",
        lambda: users.ban(ctx, who, name, reason),
        "Banned: sessions closed and password replaced. Set a new password to let "
        "the user back in.",
    )


@router.post("/users/{name}/delete")
async def user_delete(
    request: Request,
    name: str,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_USERS))],
    ctx: ContextDep,
) -> Response:
    return await act(request, "/users", lambda: users.delete(ctx, who, name), f"Deleted {name}.")


# Groups and group chats


@router.get("/groups")
async def group_list(
    request: Request,
    who: Annotated[Principal, Depends(page(P.VIEW))],
    ctx: ContextDep,
) -> HTMLResponse:
    return render(
        request,
        "groups.html",
        who,
        groups=await groups.group_listing(ctx),
        rooms=await groups.room_listing(ctx),
    )


@router.post("/groups")
async def group_create(
    request: Request,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_GROUPS))],
    ctx: ContextDep,
    name: Annotated[str, Form()] = "",
    label: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
) -> Response:
    return await act(
        request,
        "/groups",
        lambda: groups.create_group(ctx, who, name, label, description),
        lambda g: f"Created group {g}.",
    )


@router.post("/groups/{name}/delete")
async def group_delete(
    request: Request,
    name: str,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_GROUPS))],
    ctx: ContextDep,
) -> Response:
    return await act(
        request, "/groups", lambda: groups.delete_group(ctx, who, name), f"Deleted group {name}."
    )


@router.post("/groups/{name}/members")
async def group_member(
    request: Request,
    name: str,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_GROUPS))],
    ctx: ContextDep,
    user: Annotated[str, Form()] = "",
    remove: Annotated[str, Form()] = "",
) -> Response:
    member = not remove
    return await act(
        request,
        "/groups",
        lambda: groups.set_group_member(ctx, who, name, user, member),
        f"{'Added' if member else 'Removed'} {user} {'to' if member else 'from'} {name}.",
    )


@router.post("/rooms")
async def room_create(
    request: Request,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_GROUPS))],
    ctx: ContextDep,
    name: Annotated[str, Form()] = "",
    title: Annotated[str, Form()] = "",
) -> Response:
    return await act(
        request,
        "/groups",
        lambda: groups.create_room(ctx, who, name, title),
        lambda r: f"Created group chat {r}.",
    )


@router.post("/rooms/{name}/delete")
async def room_delete(
    request: Request,
    name: str,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_GROUPS))],
    ctx: ContextDep,
) -> Response:
    return await act(
        request,
        "/groups",
        lambda: groups.delete_room(ctx, who, name),
        f"Deleted group chat {name}.",
    )


@router.post("/rooms/{name}/members")
async def room_member(
    request: Request,
    name: str,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_GROUPS))],
    ctx: ContextDep,
    user: Annotated[str, Form()] = "",
    remove: Annotated[str, Form()] = "",
) -> Response:
    member = not remove
    return await act(
        request,
        "/groups",
        lambda: groups.set_room_member(ctx, who, name, user, member),
        f"{'Added' if member else 'Removed'} {user} {'to' if member else 'from'} {name}.",
    )


# Invitations


async def invites_page(
    request: Request, who: Principal, ctx: Context, **values: str
) -> HTMLResponse:
    return render(
        request,
        "invites.html",
        who,
        invites=invites.listing(ctx),
        group_names=await ctx.ejabberd.groups(),
        **values,
    )


@router.get("/invites")
async def invite_list(
    request: Request,
    who: Annotated[Principal, Depends(page(P.VIEW))],
    ctx: ContextDep,
) -> HTMLResponse:
    return await invites_page(request, who, ctx)


@router.post("/invites")
async def invite_create(
    request: Request,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_INVITES))],
    ctx: ContextDep,
    hours: Annotated[int, Form()] = 72,
    group: Annotated[str, Form()] = "",
    max_uses: Annotated[int, Form()] = 1,
) -> Response:
    async def show(made: Any) -> HTMLResponse:
        link = invite_url(request, ctx, made[1])
        notice = f"Invitation #{made[0]}: {link} (shown once: copy it now)."
        code = qr.svg(link, f"Invitation #{made[0]}")
        return await invites_page(request, who, ctx, notice=notice, created_qr=code)

    return await reveal(
        request, "/invites", lambda: invites.create(ctx, who, hours, group, max_uses), show
    )


@router.post("/invites/{invite_id}/revoke")
async def invite_revoke(
    request: Request,
    invite_id: models.RowId,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_INVITES))],
    ctx: ContextDep,
) -> Response:
    return await act(
        request,
        "/invites",
        lambda: invites.revoke(ctx, who, invite_id),
        f"Revoked invitation #{invite_id}.",
    )


# Broadcast


@router.get("/broadcast")
async def broadcast_form(
    request: Request,
    who: Annotated[Principal, Depends(page(P.BROADCAST))],
) -> HTMLResponse:
    return render(request, "broadcast.html", who)


@router.post("/broadcast")
async def broadcast_send(
    request: Request,
    who: Annotated[Principal, Depends(form_action(P.BROADCAST))],
    ctx: ContextDep,
    audience: Annotated[str, Form()] = "online",
    subject: Annotated[str, Form()] = "",
    body: Annotated[str, Form()] = "",
) -> Response:
    return await act(
        request,
        "/broadcast",
        lambda: dashboard.broadcast(ctx, who, audience, subject, body),
        f"Sent to {audience} users.",
    )


# Operators and API tokens


async def operators_page(
    request: Request, who: Principal, ctx: Context, **values: str
) -> HTMLResponse:
    return render(
        request,
        "operators.html",
        who,
        operators=operators.listing(ctx),
        roles=list(Role),
        tokens=operators.token_listing(ctx),
        **values,
    )


@router.get("/operators")
async def operator_list(
    request: Request,
    who: Annotated[Principal, Depends(page(P.MANAGE_OPERATORS))],
    ctx: ContextDep,
) -> HTMLResponse:
    return await operators_page(request, who, ctx)


@router.post("/operators")
async def operator_create(
    request: Request,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_OPERATORS))],
    ctx: ContextDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "viewer",
) -> Response:
    return await act(
        request,
        "/operators",
        lambda: operators.create(ctx, who, username, password, role),
        f"Created operator {username}.",
    )


@router.post("/operators/{operator_id}/role")
async def operator_role(
    request: Request,
    operator_id: models.RowId,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_OPERATORS))],
    ctx: ContextDep,
    role: Annotated[str, Form()] = "",
) -> Response:
    return await act(
        request,
        "/operators",
        lambda: operators.set_role(ctx, who, operator_id, role),
        "Role changed.",
    )


@router.post("/operators/{operator_id}/delete")
async def operator_delete(
    request: Request,
    operator_id: models.RowId,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_OPERATORS))],
    ctx: ContextDep,
) -> Response:
    return await act(
        request, "/operators", lambda: operators.delete(ctx, who, operator_id), "Operator deleted."
    )


@router.post("/tokens")
async def token_create(
    request: Request,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_TOKENS))],
    ctx: ContextDep,
    name: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "viewer",
    days: Annotated[int, Form()] = 30,
) -> Response:
    async def show(made: Any) -> HTMLResponse:
        notice = f"Token {made[1]} (shown once: copy it now)."
        return await operators_page(request, who, ctx, notice=notice)

    return await reveal(
        request, "/operators", lambda: operators.create_token(ctx, who, name, role, days), show
    )


@router.post("/tokens/{token_id}/revoke")
async def token_revoke(
    request: Request,
    token_id: models.RowId,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_TOKENS))],
    ctx: ContextDep,
) -> Response:
    return await act(
        request, "/operators", lambda: operators.revoke_token(ctx, who, token_id), "Token revoked."
    )


# Webhooks


async def webhooks_page(
    request: Request, who: Principal, ctx: Context, **values: str
) -> HTMLResponse:
    return render(
        request,
        "webhooks.html",
        who,
        webhooks=webhooks.listing(ctx),
        event_types=EVENT_TYPES,
        **values,
    )


@router.get("/webhooks")
async def webhook_list(
    request: Request,
    who: Annotated[Principal, Depends(page(P.VIEW))],
    ctx: ContextDep,
) -> HTMLResponse:
    return await webhooks_page(request, who, ctx)


@router.post("/webhooks")
async def webhook_create(
    request: Request,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_INTEGRATIONS))],
    ctx: ContextDep,
    name: Annotated[str, Form(max_length=200)] = "",
    url: Annotated[str, Form(max_length=4096)] = "",
    events: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI copies form defaults
) -> Response:
    async def show(made: Any) -> HTMLResponse:
        notice = (
            f"Webhook {name} registered. Its secret, {made[1]}, is shown this once: give it to "
            "the receiver, which checks each delivery's X-Pi-Im-Signature with it."
        )
        return await webhooks_page(request, who, ctx, notice=notice)

    return await reveal(
        request, "/webhooks", lambda: webhooks.create(ctx, who, name, url, events[:16]), show
    )


@router.post("/webhooks/{webhook_id}/secret")
async def webhook_secret(
    request: Request,
    webhook_id: models.RowId,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_INTEGRATIONS))],
    ctx: ContextDep,
) -> Response:
    async def show(secret: Any) -> HTMLResponse:
        notice = f"New secret {secret} (shown once); the old one is no longer used."
        return await webhooks_page(request, who, ctx, notice=notice)

    return await reveal(
        request, "/webhooks", lambda: webhooks.new_secret(ctx, who, webhook_id), show
    )


@router.post("/webhooks/{webhook_id}/pause")
async def webhook_pause(
    request: Request,
    webhook_id: models.RowId,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_INTEGRATIONS))],
    ctx: ContextDep,
) -> Response:
    return await act(
        request,
        "/webhooks",
        lambda: webhooks.change(ctx, who, webhook_id, paused=True),
        "Paused: its events wait in its queue.",
    )


@router.post("/webhooks/{webhook_id}/resume")
async def webhook_resume(
    request: Request,
    webhook_id: models.RowId,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_INTEGRATIONS))],
    ctx: ContextDep,
) -> Response:
    return await act(
        request,
        "/webhooks",
        lambda: webhooks.change(ctx, who, webhook_id, paused=False),
        "Resumed: what waited goes first.",
    )


@router.post("/webhooks/{webhook_id}/delete")
async def webhook_delete(
    request: Request,
    webhook_id: models.RowId,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_INTEGRATIONS))],
    ctx: ContextDep,
) -> Response:
    return await act(
        request, "/webhooks", lambda: webhooks.delete(ctx, who, webhook_id), "Webhook deleted."
    )


# Bots


async def bots_page(
    request: Request, who: Principal, ctx: Context, **values: object
) -> HTMLResponse:
    return render(
        request,
        "bots.html",
        who,
        bots=bots.listing(ctx),
        assistant=assistant.current(ctx),
        **values,
    )


@router.get("/bots")
async def bot_list(
    request: Request,
    who: Annotated[Principal, Depends(page(P.VIEW))],
    ctx: ContextDep,
) -> HTMLResponse:
    return await bots_page(request, who, ctx)


@router.post("/bots")
async def bot_create(
    request: Request,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_INTEGRATIONS))],
    ctx: ContextDep,
    name: Annotated[str, Form(max_length=200)] = "",
    url: Annotated[str, Form(max_length=4096)] = "",
) -> Response:
    async def show(made: Any) -> HTMLResponse:
        return await bots_page(request, who, ctx, created=made)

    return await reveal(request, "/bots", lambda: bots.create(ctx, who, name, url), show)


@router.post("/bots/assistant")
async def assistant_configure(
    request: Request,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_INTEGRATIONS))],
    ctx: ContextDep,
    name: Annotated[str, Form(max_length=200)] = "",
    url: Annotated[str, Form(max_length=4096)] = "",
    model: Annotated[str, Form(max_length=400)] = "",
    prompt: Annotated[str, Form(max_length=4000)] = "",
    per_hour: Annotated[int, Form(ge=1, le=1000)] = 20,
    turns: Annotated[int, Form(ge=0, le=50)] = 10,
    key: Annotated[str, Form(max_length=4096)] = "",
    forget_key: Annotated[str, Form(max_length=1)] = "",
) -> Response:
    new_key = "" if forget_key else (key or None)
    return await act(
        request,
        "/bots#assistant",
        lambda: assistant.configure(ctx, who, name, url, model, prompt, per_hour, turns, new_key),
        "Assistant saved.",
    )


@router.post("/bots/assistant/remove")
async def assistant_remove(
    request: Request,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_INTEGRATIONS))],
    ctx: ContextDep,
) -> Response:
    return await act(request, "/bots", lambda: assistant.remove(ctx, who), "Assistant removed.")


@router.post("/bots/{name}/delete")
async def bot_delete(
    request: Request,
    name: str,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_INTEGRATIONS))],
    ctx: ContextDep,
) -> Response:
    return await act(request, "/bots", lambda: bots.delete(ctx, who, name), f"Bot {name} deleted.")


@router.get("/webhooks/{webhook_id}")
async def webhook_deliveries(
    request: Request,
    webhook_id: models.RowId,
    who: Annotated[Principal, Depends(page(P.VIEW))],
    ctx: ContextDep,
) -> HTMLResponse:
    return render(
        request,
        "webhook.html",
        who,
        webhook=webhooks.detail(ctx, webhook_id),
        deliveries=webhooks.deliveries(ctx, webhook_id),
    )


# Moderation


@router.get("/moderation")
async def moderation_page(
    request: Request,
    who: Annotated[Principal, Depends(page(P.VIEW_MODERATION))],
    ctx: ContextDep,
) -> HTMLResponse:
    rules = moderation.rules(ctx)
    return render(
        request,
        "moderation.html",
        who,
        words=[r for r in rules if r.kind == "word"],
        patterns=[r for r in rules if r.kind == "pattern"],
        rules_by_id={r.id: r for r in rules},
        keep_text=moderation.keeps_text(ctx),
        in_step=await moderation.in_step(ctx),
        reports=moderation.records(ctx, ("report",), 100),
        records=moderation.records(ctx, ("blocked", "masked")),
        max_rules=moderation.MAX_RULES,
        max_patterns=moderation.MAX_PATTERNS,
    )


@router.post("/moderation/rules")
async def moderation_add(
    request: Request,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_MODERATION))],
    ctx: ContextDep,
    kind: Annotated[str, Form(max_length=20)] = "",
    text: Annotated[str, Form(max_length=1000)] = "",
    action: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    return await act(
        request,
        "/moderation",
        lambda: moderation.add(ctx, who, kind, text, action),
        lambda rule_id: f"Added as rule #{rule_id}: it applies from the next message on.",
    )


@router.post("/moderation/words")
async def moderation_add_words(
    request: Request,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_MODERATION))],
    ctx: ContextDep,
    words: Annotated[str, Form(max_length=60000)] = "",
    action: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    return await act(
        request,
        "/moderation",
        lambda: moderation.add_words(ctx, who, words, action),
        lambda ids: f"{len(ids)} words added (words already in the list are left as they are).",
    )


@router.post("/moderation/rules/{rule_id}/delete")
async def moderation_remove(
    request: Request,
    rule_id: models.RowId,
    who: Annotated[Principal, Depends(form_action(P.MANAGE_MODERATION))],
    ctx: ContextDep,
) -> Response:
    return await act(
        request,
        "/moderation",
        lambda: moderation.remove(ctx, who, rule_id),
        f"Rule #{rule_id} removed.",
    )


@router.post("/moderation/keep-text")
async def moderation_keep_text(
    request: Request,
    who: Annotated[Principal, Depends(form_action(P.KEEP_MESSAGE_TEXT))],
    ctx: ContextDep,
    keep: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    on = keep == "on"
    return await act(
        request,
        "/moderation",
        lambda: moderation.keep_text(ctx, who, on),
        "Records now keep what was said." if on else "Records no longer keep what was said.",
    )
