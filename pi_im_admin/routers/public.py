"""The public sign-up page that redeems an invitation (in-band registration stays off)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..auth import context
from ..context import Context
from ..errors import Problem
from ..services import invites
from .pages import render

router = APIRouter(include_in_schema=False)


@router.get("/invite/{token}")
async def invite_form(
    request: Request, token: str, ctx: Context = Depends(context)
) -> HTMLResponse:
    try:
        invite = invites.lookup(ctx, token)
    except Problem as problem:
        return render(request, "invite.html", None, status=problem.status, invalid=problem.message)
    return render(
        request, "invite.html", None, invite=invite, token=token, domain=ctx.ejabberd.domain
    )


@router.post("/invite/{token}")
async def invite_redeem(
    token: str, username: str = Form(""), password: str = Form(""), ctx: Context = Depends(context)
) -> Response:
    # The unguessable token in the URL is what a cross-site form could not know.
    try:
        name = await invites.redeem(ctx, token, username, password)
    except Problem as problem:
        return RedirectResponse(f"/invite/{token}?{urlencode({'error': problem.message})}", 303)
    done = urlencode({"jid": f"{name}@{ctx.ejabberd.domain}"})
    return RedirectResponse(f"/welcome?{done}", 303)


@router.get("/welcome")
async def welcome(request: Request, jid: str = "") -> HTMLResponse:
    return render(request, "welcome.html", None, jid=jid[:1100])
