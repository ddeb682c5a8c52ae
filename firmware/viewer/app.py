"""The viewer's web app (Starlette): one page, its static files, a WebSocket of live events, and images.

Everything is served from this process (no CDN). Images are sent with `Cache-Control: no-store` so the
browser keeps no copy; a WebSocket from a page of another origin is refused, so a web site open in the
same browser cannot read alerts or send decisions, and requests naming another host are refused, so a
site whose name is made to resolve to 127.0.0.1 (DNS rebinding) cannot read them either. Every POST must
be JSON with this page's own Origin, and every body is capped at 16 KiB (firmware/viewer/guard.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from firmware.errors import LfrError, PolicyError
from firmware.viewer.console import Console
from firmware.viewer.guard import RequestGuard
from firmware.viewer.store import IMAGES, AlertFilter

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
NO_STORE = {"Cache-Control": "no-store"}


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def create_app(console: Console, *, hosts: tuple[str, ...] = LOCAL_HOSTS,
               extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The ASGI app serving `console` to the operator's browser; `hosts` are the Host names accepted;
    `extra_routes` add features behind the same host check (the handhelds' operator routes)."""

    async def index(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", headers=NO_STORE)

    async def state(request: Request) -> Response:
        return JSONResponse(console.snapshot())

    async def history(request: Request) -> Response:
        q = request.query_params
        try:
            where = AlertFilter(outcome=q.get("outcome") or None, camera=q.get("camera") or None,
                                category=q.get("category") or None, deployment=q.get("deployment") or None,
                                since=_number(q, "since"), until=_number(q, "until"),
                                min_score=_number(q, "min_score"))
            limit, offset = int(_number(q, "limit") or 50), int(_number(q, "offset") or 0)
            page = console.history(where, limit=limit, offset=offset)
        except LfrError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(page)

    async def favicon(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")

    async def image(request: Request) -> Response:
        which = request.path_params["which"]
        if which not in IMAGES:
            return JSONResponse({"error": f"unknown image {which!r}"}, status_code=404)
        data = console.store.image(request.path_params["alert_id"], which)
        if data is None:
            return JSONResponse({"error": "no such image (unknown alert, or purged after retention)"},
                                status_code=404, headers=NO_STORE)
        return Response(data, media_type="image/jpeg", headers=NO_STORE)

    async def preview(request: Request) -> Response:
        frame = console.preview()
        if frame is None:
            return JSONResponse({"error": "no preview frame yet"}, status_code=404, headers=NO_STORE)
        return Response(frame.jpeg, media_type="image/jpeg", headers=NO_STORE)

    async def decide(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
        try:
            alert = await asyncio.to_thread(console.decide, request.path_params["alert_id"],
                                            str(body.get("outcome", "")), str(body.get("note", "")))
        except LfrError as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        return JSONResponse({"alert": alert})

    async def events(ws: WebSocket) -> None:
        origin = ws.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != ws.headers.get("host"):
            log.warning("refused a viewer WebSocket from origin %s", origin)
            await ws.close(code=1008)
            return
        await ws.accept()
        sub = console.subscribe()  # before the snapshot: nothing published meanwhile is missed
        sender: asyncio.Task[None] | None = None
        try:
            await ws.send_json(console.snapshot())
            sender = asyncio.create_task(_send_events(ws, sub.queue))
            while True:
                await _handle(sub.queue, console, await ws.receive_json())
        except (WebSocketDisconnect, RuntimeError):
            pass  # the page closed or reloaded
        except ValueError as exc:
            log.warning("viewer page sent something that is not JSON (%s); closing its socket", exc)
        finally:
            console.unsubscribe(sub)
            if sender is not None:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                    await sender

    return Starlette(middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(hosts)),
                                 Middleware(RequestGuard, require_origin=True, name="viewer")], routes=[
        Route("/", index),
        Route("/favicon.ico", favicon),
        Route("/api/state", state),
        Route("/api/alerts", history),
        Route("/api/alerts/{alert_id}/{which}.jpg", image),
        Route("/api/alerts/{alert_id}/decision", decide, methods=["POST"]),
        Route("/api/preview.jpg", preview),
        WebSocketRoute("/ws", events),
        *extra_routes,
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ])


def _number(query: Any, name: str) -> float | None:
    """A finite number from the query string, None when absent or empty; PolicyError when not a number."""
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        value = float(raw)
    except ValueError:
        raise PolicyError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise PolicyError(f"{name} must be a finite number, got {raw!r}")
    return value


async def _send_events(ws: WebSocket, queue: asyncio.Queue[dict[str, Any]]) -> None:
    while True:
        await ws.send_json(await queue.get())


async def _handle(replies: asyncio.Queue[dict[str, Any]], console: Console, message: Any) -> None:
    """One message from a page: a decision, or the time it showed an alert; replies go out in order."""
    kind = message.get("type") if isinstance(message, dict) else None
    if kind == "decide":
        alert_id = str(message.get("alert_id", ""))
        try:
            await asyncio.to_thread(console.decide, alert_id, str(message.get("outcome", "")),
                                    str(message.get("note", "")))
        except LfrError as exc:
            replies.put_nowait({"type": "refused", "alert_id": alert_id, "reason": str(exc)})
    elif kind == "rendered":
        t_wall = message.get("t_wall")
        if isinstance(t_wall, (int, float)) and not isinstance(t_wall, bool):
            console.rendered(str(message.get("alert_id", "")), float(t_wall))
    else:
        log.debug("viewer page sent an unknown message type %r", kind)
