"""The public sign-up page that redeems an invitation (in-band registration stays off).
Nothing here travels in a query string; failed attempts are limited per address and per
invitation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from .. import qr
from ..apps import APPS
from ..auth import ContextDep
from ..context import Context
from ..errors import Problem
from ..security import digest
from ..services import invites
from ..web import render, web_chat_url

router = APIRouter(include_in_schema=False)
TOO_MANY = "Too many failed attempts. Wait 15 minutes and try again."


def form(
    request: Request, ctx: Context, token: str, status: int = 200, error: str = ""
) -> HTMLResponse:
    """The sign-up form, or why this invitation cannot be used."""
    try:
        invite = invites.lookup(ctx, token)
    except Problem as problem:
        return render(request, "invite.html", None, status=problem.status, invalid=problem.message)
    return render(
        request,
        "invite.html",
        None,
        status=status,
        invite=invite,
        token=token,
        domain=ctx.ejabberd.domain,
        error=error,
        apps=APPS,
    )


@router.get("/invite/{token}")
async def invite_form(
    request: Request,
    token: str,
    ctx: ContextDep,
) -> HTMLResponse:
    return form(request, ctx, token)


@router.post("/invite/{token}")
async def invite_redeem(
    request: Request,
    token: str,
    ctx: ContextDep,
    username: Annotated[str, Form(max_length=1024)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
) -> HTMLResponse:
    # The unguessable token in the URL is what a cross-site form could not know.
    keys = {
        "address": request.client.host if request.client else "?",
        "invitation": digest(token)[:32],
    }
    if ctx.redemptions.blocked(**keys):
        return form(request, ctx, token, status=429, error=TOO_MANY)
    try:
        name = await invites.redeem(ctx, token, username, password)
    except Problem as problem:
        ctx.redemptions.failed(**keys)
        return form(request, ctx, token, status=problem.status, error=problem.message)
    jid = f"{name}@{ctx.ejabberd.domain}"
    code = qr.svg(f"xmpp:{jid}", f"Your chat address, {jid}")
    return render(
        request,
        "welcome.html",
        None,
        status=201,
        jid=jid,
        jid_qr=code,
        apps=APPS,
        web_chat=web_chat_url(request, ctx),
    )
