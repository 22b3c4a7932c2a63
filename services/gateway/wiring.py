"""What the gateway adds beside its API routes: the status store and its follower, the
application-status and dead-letter routes, and the operator console.

``install(app, gw, follow=...)`` is called once by ``create_app``. The stores hang on the
``Gateway`` (``gateway.status``, ``gateway.users``); tests may set them before the first request.
``follow`` starts the topic follower with the app (the real gateway, not the tests' one).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from services.gateway import console, tracking
from services.gateway.auth import FailureLimiter
from services.gateway.status import StatusFollower, StatusStore, engine_for
from services.gateway.users import UserStore


def database_url() -> str:
    """``DOPOMOGA_GATEWAY_DB`` (e.g. PostgreSQL for several replicas), else SQLite under ``var/``."""
    url = os.environ.get("DOPOMOGA_GATEWAY_DB")
    if url:
        return url
    from services.platform.config import settings

    var = settings("gateway").var_dir
    var.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{var / 'gateway-console.sqlite'}"


def attach(g: Any) -> Any:
    """Give the gateway its status and user stores (one database), unless it has them."""
    if getattr(g, "status", None) is None or getattr(g, "users", None) is None:
        engine = engine_for(database_url())
        if getattr(g, "status", None) is None:
            g.status = StatusStore(engine)
        if getattr(g, "users", None) is None:
            g.users = UserStore(engine)
    if getattr(g, "login_limiter", None) is None:  # 5 wrong passwords in 5 min: 15 min lockout
        g.login_limiter = FailureLimiter(max_failures=5, window_s=300, lockout_s=900)
    return g


def install(app: FastAPI, gw: Callable[[], Any], *, follow: bool) -> None:
    def gateway() -> Any:
        return attach(gw())

    tracking.install(app, gateway)
    console.install(app, gateway)
    if not follow:
        return
    previous = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: FastAPI):
        from services.platform.config import settings
        from services.platform.topology import SERVICES

        config = settings("gateway")
        g = gateway()
        watched = {spec.name: settings(spec.name).app_id for spec in SERVICES if spec.consumes and spec.name != "gateway"}
        follower = g.follower = StatusFollower(g.status, config.bootstrap, config.app_id, watched).start()
        try:
            async with previous(application) as state:
                yield state
        finally:
            follower.stop()

    app.router.lifespan_context = lifespan
