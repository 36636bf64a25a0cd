"""The investigators' page: a little HTML, CSS and JavaScript of ours, served from the package.

The page holds no data: it asks for an API key (kept in the tab's ``sessionStorage``) and calls
the JSON API with it, so every read goes through the same roles, limits and read audit.
"""

from __future__ import annotations

from importlib import resources
from typing import Final

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

router = APIRouter(tags=["ui"], include_in_schema=False)
ASSETS: Final[dict[str, str]] = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
_HEADERS: Final = {
    # NOTE: nothing but our own files and our own API: no CDN, no inline script.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "style-src 'self'; script-src 'self'; object-src 'none'; "
                               "frame-ancestors 'none'",
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
}


@router.get("/ui")
def page() -> Response:
    """The investigators' page."""
    return _asset("index.html")


@router.get("/ui/{name}")
def asset(name: str) -> Response:
    """The page's script and style sheet."""
    if name not in ASSETS:
        raise HTTPException(404, f"no asset {name!r}")
    return _asset(name)


def _asset(name: str) -> Response:
    body = resources.files("serving").joinpath("ui", name).read_bytes()
    return Response(body, media_type=ASSETS[name], headers=_HEADERS)
