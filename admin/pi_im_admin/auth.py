"""Who is asking, and may they? Pages use a session cookie plus a CSRF token on every form;
the REST API uses bearer tokens (no cookies, so no CSRF)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Form, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .context import Context
from .errors import Forbidden, Problem
from .permissions import Permission, allows
from .security import Principal
from .services import bots as services_bots

SESSION_COOKIE = "pi_im_session"
SIGNIN_CSRF_COOKIE = "pi_im_signin_csrf"


class Unauthenticated(Problem):
    status = 401


class SignInRequired(Exception):
    """A page asked for without a valid session: the browser is sent to the sign-in page."""


def context(request: Request) -> Context:
    return request.app.state.context


# The service's shared state, as a route asks for it.
ContextDep = Annotated[Context, Depends(context)]


_bearer = HTTPBearer(auto_error=False, description="An API token created on the Tokens page.")


def api_principal(
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    ctx: Context = Depends(context),
) -> Principal:
    principal = ctx.tokens.lookup(credentials.credentials) if credentials else None
    if principal is None:
        raise Unauthenticated("A valid API token is required (Authorization: Bearer ...).")
    return principal


def bot_name(
    name: str,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    ctx: Context = Depends(context),
) -> str:
    """The bot a request to /bots/{name}/... speaks for: its token, and only its own."""
    bot = services_bots.bot_for(ctx, name, credentials.credentials) if credentials else None
    if bot is None:
        raise Unauthenticated("This bot's token is required (Authorization: Bearer ...).")
    return bot


def page_principal(request: Request, ctx: Context = Depends(context)) -> Principal:
    principal = ctx.sessions.lookup(request.cookies.get(SESSION_COOKIE))
    if principal is None:
        raise SignInRequired
    return principal


def required_permission(dependency: Callable[..., object]) -> Permission | None:
    """The permission a dependency made by api(), page() or form_action() checks."""
    return getattr(dependency, "permission", None)


def _checker(source: Callable[..., Principal], permission: Permission) -> Callable[..., Principal]:
    def check(principal: Principal = Depends(source)) -> Principal:
        if not allows(principal.role, permission):
            raise Forbidden(f"The {principal.role} role may not do this ({permission}).")
        return principal

    # Read back by required_permission: the tests check every route against the role matrix.
    check.permission = permission  # type: ignore[attr-defined]
    return check


def api(permission: Permission) -> Callable[..., Principal]:
    return _checker(api_principal, permission)


def page(permission: Permission) -> Callable[..., Principal]:
    return _checker(page_principal, permission)


def form_action(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    """A page form post: signed in, permitted, and carrying the session's CSRF token."""

    async def check(
        csrf: str = Form(""), principal: Principal = Depends(page(permission))
    ) -> Principal:
        if not secrets.compare_digest(csrf, principal.csrf):
            raise Forbidden("The form was stale or not sent by this console; reload the page.")
        return principal

    check.permission = permission  # type: ignore[attr-defined]
    return check
