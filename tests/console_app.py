"""The console in-process for tests: its real app and SQLite database, an operator of each
role, and API clients with their tokens. ejabberd is an address where nothing answers."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from pi_im_admin.app import create_app
from pi_im_admin.permissions import Role
from pi_im_admin.security import Principal, hash_password
from pi_im_admin.services import operators
from pi_im_admin.settings import Settings

PASSWORD = "correct horse battery"


def console_app(folder: Path) -> FastAPI:
    """The app, with an operator `op-<role>` of each role (their ids in app.state.ids)."""
    settings = Settings(
        database=folder / "admin.db",
        ejabberd_api="http://127.0.0.1:9/api",  # nothing answers: ejabberd is down
        allowed_hosts=("testserver",),
        tls_pem=None,
    )
    app = create_app(settings)
    ctx = app.state.context
    app.state.ids = {
        role: ctx.db.run(
            "INSERT INTO operators (username, password_hash, role, created_at) VALUES (?, ?, ?, ?)",
            f"op-{role}",
            hash_password(PASSWORD),
            role,
            time.time(),
        )
        for role in Role
    }
    return app


def api_client(app: FastAPI, role: Role, token_name: str) -> TestClient:
    """The REST API with a new token of `role`'s operator, named `token_name`."""
    actor = Principal(name=f"op-{role}", role=role, operator_id=app.state.ids[role])
    _, token = operators.create_token(app.state.context, actor, token_name, role)
    return TestClient(app, headers={"Authorization": f"Bearer {token}"})
