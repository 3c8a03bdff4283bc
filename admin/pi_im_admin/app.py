"""The FastAPI application: routers, templates, error handling and its background tasks: the
sampler (dashboard samples; moderation's list and the bots kept applied) and the relay of the
assistant's answers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from . import __version__
from .auth import SignInRequired
from .context import Context
from .db import Database
from .ejabberd import Ejabberd
from .errors import Problem
from .middleware import AccessLog, BodyLimit, KnownHosts
from .routers import api, pages, public
from .security import ApiTokens, Sessions, Throttle
from .settings import Settings

HERE = Path(__file__).parent
log = logging.getLogger("pi_im_admin")
# How often the assistant's answers are looked for: a few reads of an empty table a second.
RELAY_SECONDS = 0.5


def build_context(settings: Settings) -> Context:
    db = Database(settings.database)
    password = settings.ejabberd_api_password_file
    credentials = (
        (f"{settings.ejabberd_api_user}@{settings.xmpp_domain}", password.read_text().strip())
        if settings.ejabberd_api_user and password
        else None
    )
    return Context(
        settings=settings,
        db=db,
        ejabberd=Ejabberd(
            settings.ejabberd_api, settings.xmpp_domain, credentials, settings.tls_pem
        ),
        sessions=Sessions(db, settings.session_hours),
        tokens=ApiTokens(db),
        # Failed sign-ins: per address, and per user name at that address.
        signins=Throttle(address=20, name_at_address=5),
        # Failed sign-ups with an invitation (a taken name, a weak password): per address and
        # per invitation, so one link is no oracle for which names exist.
        redemptions=Throttle(address=20, invitation=10),
    )


async def _sampler(ctx: Context) -> None:
    from .services import bots, dashboard, moderation

    while True:
        try:
            await dashboard.sample(ctx)
        except Problem as problem:
            log.warning("dashboard sample skipped: %s", problem.message)
        # A server that lost the moderation list or the bots (a restore, a reset) gets them
        # back within a sample, whether or not anyone opens their pages.
        await moderation.in_step(ctx)
        await bots.in_step(ctx)
        await asyncio.sleep(ctx.settings.sample_seconds)


async def _relay(ctx: Context) -> None:
    """The assistant's answers, from the dispatcher through the database, to ejabberd."""
    from .services import bots

    while True:
        try:
            await bots.relay(ctx)
        except Problem as problem:
            log.warning("bot answers not sent: %s", problem.message)
        await asyncio.sleep(RELAY_SECONDS)


def create_app(settings: Settings | None = None) -> FastAPI:
    ctx = build_context(settings or Settings())

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        sampler = asyncio.create_task(_sampler(ctx))
        relay = asyncio.create_task(_relay(ctx))
        yield
        sampler.cancel()
        relay.cancel()
        await ctx.ejabberd.close()
        ctx.db.close()

    app = FastAPI(
        title="pi-im admin",
        version=__version__,
        description="Users, groups, invitations, broadcast and operators of a pi-im appliance.",
        lifespan=lifespan,
    )
    app.state.context = ctx
    app.state.templates = Jinja2Templates(directory=HERE / "templates")
    app.state.templates.env.filters["datetime"] = lambda ts: datetime.fromtimestamp(
        ts, UTC
    ).strftime("%Y-%m-%d %H:%M:%S")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(api.router)
    app.include_router(public.router)
    app.include_router(pages.router)
    # Outermost last: the access log sees every request, refused ones included.
    app.add_middleware(BodyLimit, max_bytes=ctx.settings.max_body_bytes)
    app.add_middleware(KnownHosts, names=ctx.settings.allowed_hosts)
    app.add_middleware(AccessLog)

    @app.exception_handler(Problem)
    async def problem(request: Request, error: Problem) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": error.message}, status_code=error.status)
        return pages.render(request, "error.html", None, status=error.status, message=error.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        # One readable sentence, like every other refusal, instead of pydantic's structure.
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']}"
            for e in error.errors()
        )
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": f"Invalid request: {detail}"}, status_code=422)
        return pages.render(request, "error.html", None, status=422, message=detail)

    @app.exception_handler(SignInRequired)
    async def sign_in(request: Request, _: SignInRequired) -> Response:
        return RedirectResponse(f"/signin?{urlencode({'next': request.url.path})}", 303)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
            "frame-ancestors 'none'",
        )
        return response

    return app
