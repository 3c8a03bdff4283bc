"""What the routers share to answer a browser: rendering a page with the operator's grants and
pending message, messages for the next page, the link an invitation is redeemed at, and who
asked. Routers import this, never each other."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from .auth import SESSION_COOKIE
from .context import Context
from .permissions import GRANTS
from .permissions import Permission as P
from .security import Principal


def render(
    request: Request, template: str, who: Principal | None, status: int = 200, **values: Any
) -> HTMLResponse:
    """A page; a signed-in operator's pending notice or error comes with it, once."""
    grants = GRANTS[who.role] if who else frozenset()
    flash = (
        request.app.state.context.sessions.take_flash(request.cookies.get(SESSION_COOKIE))
        if who
        else {}
    )
    return request.app.state.templates.TemplateResponse(
        request,
        template,
        {"who": who, "can": {p.value: p in grants for p in P}, **flash, **values},
        status_code=status,
    )


def flash(request: Request, kind: str, text: str) -> None:
    """Keep a message for the next page this operator sees (never in the URL)."""
    request.app.state.context.sessions.flash(request.cookies.get(SESSION_COOKIE), kind, text)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "?"


def invite_url(request: Request, ctx: Context, token: str) -> str:
    base = ctx.settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")
    return f"{base}/invite/{token}"


def web_chat_url(request: Request, ctx: Context) -> str:
    """The device's web chat by the name this browser reached the device by (it answers to any
    of them), or "" when the device has none."""
    if not ctx.settings.web_chat_port:
        return ""
    host = request.url.hostname or ctx.settings.xmpp_domain
    host = f"[{host}]" if ":" in host else host
    return f"https://{host}:{ctx.settings.web_chat_port}/"
