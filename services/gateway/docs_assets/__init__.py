"""Swagger UI and ReDoc served from this package, so ``/docs`` and ``/redoc`` work with no network.

Vendored from the npm registry (``npm pack``): swagger-ui-dist 5.35.0 (``swagger-ui-bundle.js``,
``swagger-ui.css``, ``favicon-32x32.png``; Apache-2.0, ``LICENSE.swagger-ui``) and redoc 2.5.4
(``redoc.standalone.js``; MIT, ``LICENSE.redoc``). Redoc 3 was not taken: it loads its icons from
a CDN. To refresh: ``npm pack swagger-ui-dist@X redoc@Y``, copy the same files, run
``tests/gateway/test_docs_offline.py``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(__file__).resolve().parent
PREFIX = "/_assets/docs"


def install(app: FastAPI) -> None:
    """``/docs`` and ``/redoc`` with local scripts; create the app with ``docs_url=None, redoc_url=None``."""
    app.mount(PREFIX, StaticFiles(directory=ASSETS, check_dir=True), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{PREFIX}/favicon-32x32.png",
            # no online validator badge (it would fetch an image from another host)
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{PREFIX}/redoc.standalone.js",
            redoc_favicon_url=f"{PREFIX}/favicon-32x32.png",
            with_google_fonts=False,
        )
