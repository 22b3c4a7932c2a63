"""The operator console: server-rendered pages (Jinja2) served by the gateway, Ukrainian first.

Start page ``/`` (overview); every other page is one click away in the top navigation:
applications (and each decision), dead letters, programs, budget, reports, registers, what if. People
sign in (``services.gateway.users``); pages never show a full РНОКПП or IBAN to a viewer.
No script is needed (one inline ``window.print()``), nothing is loaded from another host.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request

from services.gateway.console.i18n import translate
from services.gateway.console.web import COOKIE, HERE, Redirect, lang_of, render

log = logging.getLogger("dopomoga.gateway.console")


def _error_page(request: Request, g: Any, status: int, text: str):
    user = None
    try:
        user = g.users.session_user(request.cookies.get(COOKIE))
    except Exception:  # the error page must render even when the store does not
        user = None
    return render(request, g, "error.html", user, status_code=status, text=text)


def install(app: FastAPI, gw) -> None:
    from services.gateway.console import ops, pages, whatif_page

    class ConsoleRoute(APIRoute):
        """HTML answers for the console: a sign-in redirect, an error page; never a traceback."""

        def get_route_handler(self):
            handler = super().get_route_handler()

            async def run(request: Request):
                lang = lang_of(request)
                try:
                    return await handler(request)
                except Redirect as exc:
                    return RedirectResponse(exc.to, status_code=303)
                except HTTPException as exc:
                    words = {403: "forbidden", 404: "not_found"}
                    text = translate(words[exc.status_code], lang) if exc.status_code in words else (
                        translate("unavailable", lang, x=exc.detail) if exc.status_code == 503 else str(exc.detail))
                    return _error_page(request, gw(), exc.status_code, text)
                except RequestValidationError as exc:
                    fields = ", ".join(".".join(str(p) for p in e.get("loc", ())[1:]) for e in exc.errors()[:5])
                    return _error_page(request, gw(), 422, translate("invalid", lang, x=fields))
                except Exception as exc:  # a defect: logged without values, answered plainly
                    log.exception("console page failed: %s", type(exc).__name__)
                    return _error_page(request, gw(), 500, translate("error", lang) + f": {type(exc).__name__}")

            return run

    app.mount("/_console", StaticFiles(directory=HERE / "static"), name="console-static")
    for module in (pages, ops, whatif_page):
        app.include_router(module.router(gw, ConsoleRoute))
