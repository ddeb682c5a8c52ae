"""The handhelds' web app (Starlette), served on its own HTTPS listener for the van LAN.

It serves one static phone page and a small JSON API; every API call needs a paired device's credential
(an HttpOnly, Secure, SameSite=Strict cookie set at pairing, or an `Authorization: Bearer` header). An
unpaired or revoked device gets 401 and nothing else. Nothing of the operator's screen is reachable here:
no preview, no pending alerts, no history; only alerts sent to this device while they are open.
"""

from __future__ import annotations

import asyncio
import logging
import math
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from firmware.errors import LfrError
from firmware.throttle import Lockout, ThrottledLog
from firmware.viewer.guard import RequestGuard
from firmware.viewer.handheld.service import Handhelds
from firmware.viewer.handheld.store import Device

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
COOKIE = "lfr_handheld"
NO_STORE = {"Cache-Control": "no-store"}
COOKIE_MAX_AGE_S = 400 * 86400


def credential(request: Request) -> str | None:
    """The credential a request carries: bearer header first, then the cookie."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.cookies.get(COOKIE)


def _same_origin(request: Request) -> bool:
    """A state-changing request from a page of this listener (or a non-browser client without Origin)."""
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host")


def create_handheld_app(handhelds: Handhelds, lockout: Lockout | None = None) -> Starlette:
    """The ASGI app for phones. `lockout` limits wrong pairing codes per client address (default: 5 in a
    minute lock that address out for 5 minutes); bodies are capped and POSTs must be JSON (RequestGuard)."""
    lockout = lockout or Lockout()
    warnings = ThrottledLog(log)

    def device_of(request: Request) -> Device | None:
        return handhelds.authenticate(credential(request))

    def refused() -> Response:
        return JSONResponse({"error": "this device is not paired"}, status_code=401, headers=NO_STORE)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "handheld.html", headers=NO_STORE)

    def wrong_code(client: str, status: int, error: str) -> Response:
        if lockout.failed(client):
            log.warning("pairing from %s locked out for %.0f s after %d wrong codes", client, lockout.lockout_s,
                        lockout.max_failures)
        warnings.warning(f"pair:{client}", "pairing refused from %s: %s", client, error)
        return JSONResponse({"error": error}, status_code=status)

    async def pair(request: Request) -> Response:
        if not _same_origin(request):
            return JSONResponse({"error": "foreign origin"}, status_code=403)
        client = request.client.host if request.client else "?"
        wait = lockout.retry_after(client)
        if wait > 0:
            seconds = str(math.ceil(wait))
            warnings.warning(f"locked:{client}", "pairing from %s refused: locked out", client)
            return JSONResponse({"error": f"too many wrong pairing codes; try again in {seconds} s"},
                                status_code=429, headers={"Retry-After": seconds})
        try:
            body = await request.json()
        except ValueError:
            return wrong_code(client, 400, "body is not JSON")
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not 10 <= len(token) <= 100:
            return wrong_code(client, 400, "no pairing code")
        try:
            device, secret = await asyncio.to_thread(handhelds.pair, token)
        except LfrError as exc:
            return wrong_code(client, 403, str(exc))
        lockout.succeeded(client)
        response = JSONResponse({"callsign": device.callsign, "device_id": device.id}, headers=NO_STORE)
        response.set_cookie(COOKIE, secret, max_age=COOKIE_MAX_AGE_S, path="/", secure=True, httponly=True,
                            samesite="strict")
        return response

    async def feed(request: Request) -> Response:
        device = await asyncio.to_thread(device_of, request)
        if device is None:
            return refused()
        try:
            after = max(0, int(request.query_params.get("after", "0")))
        except ValueError:
            return JSONResponse({"error": "after must be an integer"}, status_code=400)
        return JSONResponse(await asyncio.to_thread(handhelds.feed, device, after), headers=NO_STORE)

    async def image(request: Request) -> Response:
        device = await asyncio.to_thread(device_of, request)
        if device is None:
            return refused()
        which = request.path_params["which"]
        if which not in ("probe", "reference", "context"):
            return JSONResponse({"error": f"unknown image {which!r}"}, status_code=404)
        data = await asyncio.to_thread(handhelds.image, device, request.path_params["alert_id"], which)
        if data is None:
            return JSONResponse({"error": "no such image for this device"}, status_code=404, headers=NO_STORE)
        return Response(data, media_type="image/jpeg", headers=NO_STORE)

    async def answer(request: Request) -> Response:
        if not _same_origin(request):
            return JSONResponse({"error": "foreign origin"}, status_code=403)
        device = await asyncio.to_thread(device_of, request)
        if device is None:
            return refused()
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        kind = body.get("answer") if isinstance(body, dict) else None
        try:
            result = await asyncio.to_thread(handhelds.answer, device, request.path_params["alert_id"],
                                             str(kind))
        except LfrError as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        return JSONResponse(result, headers=NO_STORE)

    return Starlette(middleware=[Middleware(RequestGuard, require_origin=False, name="handheld listener")],
                     routes=[
        Route("/", index),
        Route("/api/pair", pair, methods=["POST"]),
        Route("/api/feed", feed),
        Route("/api/alerts/{alert_id}/{which}.jpg", image),
        Route("/api/alerts/{alert_id}/answer", answer, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ])
