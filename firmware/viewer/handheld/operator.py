"""The operator's side of handhelds, added to the operator's local page: pair, list, revoke, dispatch.

These routes live on the operator's listener (127.0.0.1, host-checked), never on the handhelds' one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from firmware.errors import LfrError
from firmware.viewer.handheld.qr import qr_svg
from firmware.viewer.handheld.service import Handhelds, offer_id
from firmware.viewer.handheld.store import sha256


@dataclass(frozen=True)
class HandheldSite:
    """The handheld service and where phones reach it: `base_url` (https://address:port) and the
    certificate's SHA-256 fingerprint, both shown to the operator when pairing."""

    handhelds: Handhelds
    base_url: str
    fingerprint: str

    def pairing_url(self, token: str) -> str:
        """What the QR code holds: the token travels in the fragment, never in a request line or a log."""
        return f"{self.base_url}/#pair={token}"


def _foreign(request: Request) -> Response | None:
    """A refusal for a state-changing request sent by a page of another origin (cross-site forgery)."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        return JSONResponse({"error": "foreign origin"}, status_code=403)
    return None


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def operator_routes(site: HandheldSite) -> list[BaseRoute]:
    """Routes for the operator's app."""
    handhelds = site.handhelds

    async def listing(request: Request) -> Response:
        status = await asyncio.to_thread(handhelds.status)
        return JSONResponse({"url": site.base_url, "fingerprint": site.fingerprint, **status})

    async def pair(request: Request) -> Response:
        if (refused := _foreign(request)) is not None:
            return refused
        body = await _body(request)
        try:
            offer = await asyncio.to_thread(handhelds.offer_pairing, str(body.get("callsign", "")))
        except LfrError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        url = site.pairing_url(offer.token)
        return JSONResponse({"callsign": offer.callsign, "url": url, "expires": offer.expires,
                             "fingerprint": site.fingerprint, "qr_svg": qr_svg(url),
                             "offer": offer_id(sha256(offer.token))},
                            headers={"Cache-Control": "no-store"})

    async def revoke(request: Request) -> Response:
        if (refused := _foreign(request)) is not None:
            return refused
        try:
            device = await asyncio.to_thread(handhelds.revoke, request.path_params["device_id"])
        except LfrError as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        return JSONResponse({"revoked": device.callsign})

    async def dispatch(request: Request) -> Response:
        if (refused := _foreign(request)) is not None:
            return refused
        body = await _body(request)
        devices = body.get("devices")
        if body.get("all") is True:
            chosen = None
        elif isinstance(devices, list) and all(isinstance(d, str) for d in devices):
            chosen = devices
        else:
            return JSONResponse({"error": "give devices (a list of ids) or all: true"}, status_code=400)
        try:
            callsigns = await asyncio.to_thread(handhelds.dispatch, request.path_params["alert_id"], chosen)
        except LfrError as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        return JSONResponse({"sent_to": callsigns})

    return [
        Route("/api/handhelds", listing),
        Route("/api/handhelds/pair", pair, methods=["POST"]),
        Route("/api/handhelds/{device_id}/revoke", revoke, methods=["POST"]),
        Route("/api/alerts/{alert_id}/dispatch", dispatch, methods=["POST"]),
    ]
