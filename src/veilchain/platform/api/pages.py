"""The HTML the API serves: the dashboard (static files, with its own 404 page) and the API
docs (Swagger UI and ReDoc from files installed with the package, never from a CDN, so
``/docs`` works offline)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from veilchain.errors import ConfigError

DOCS_ASSETS = "/docs-assets"


def _docs_assets_dir() -> Path:
    # fastapi-offline ships the Swagger UI and ReDoc bundles; only its files are used.
    return Path(str(files("fastapi_offline") / "static"))


def mount_pages(app: FastAPI, web_dir: Path) -> None:
    """Mount ``/dashboard`` (``404.html`` answers unknown paths: Starlette's html mode) and
    the offline ``/docs`` and ``/redoc``; create the app with ``docs_url=None, redoc_url=None``."""
    if web_dir.is_dir():
        app.mount("/dashboard", StaticFiles(directory=web_dir, html=True), name="dashboard")
    app.mount(DOCS_ASSETS, StaticFiles(directory=_docs_assets_dir()), name="docs-assets")
    title = f"{app.title} docs"
    openapi_url = app.openapi_url
    if openapi_url is None:
        raise ConfigError("the /docs and /redoc pages need the app's OpenAPI schema (openapi_url)")

    @app.get("/docs", include_in_schema=False)
    def _swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    def _redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=title,
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )
