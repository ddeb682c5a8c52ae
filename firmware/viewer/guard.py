"""One gate in front of both web apps (the operator's page and the handhelds' listener), before any route.

- Every request body is capped (MAX_BODY_BYTES, 16 KiB: the largest legitimate body is a decision note)
  before it is read: a declared Content-Length above the cap is refused at once with 413, and a chunked body
  is counted as it arrives and refused when it passes the cap. Two 1.2 GB POSTs to /api/pair took the viewer
  process to 3.9 GB before this.
- Every state-changing request (anything but GET, HEAD, OPTIONS) must be `Content-Type: application/json`
  (a page of another origin cannot send that without a CORS preflight, which is never answered) and, with
  `require_origin`, carry an `Origin` equal to the page's own origin (browsers send it with every POST).
  A page elsewhere once recorded an operator decision with `fetch(..., {mode: "no-cors", body: ...})` as
  `text/plain`. The handhelds' listener keeps `require_origin` off because its paired phones may also use a
  bearer credential from a non-browser client; a foreign Origin is refused there too.
Refusals are logged through a ThrottledLog, so a flood of them is a few journal lines.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from firmware.throttle import ThrottledLog

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def same_origin(origin: str | None, host: str | None) -> bool:
    """True when the `Origin` header names the host:port the request was sent to."""
    return origin is not None and host is not None and urlsplit(origin).netloc == host


class RequestGuard:
    """ASGI middleware: body cap for every request, JSON and same-origin for every state-changing one."""

    def __init__(self, app: ASGIApp, *, max_body: int = MAX_BODY_BYTES, require_origin: bool = True,
                 name: str = "viewer") -> None:
        self.app = app
        self.max_body = max_body
        self.require_origin = require_origin
        self.name = name
        self.warnings = ThrottledLog(log)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            status, reason = refusal
            client = (scope.get("client") or ("?", 0))[0]
            self.warnings.warning(f"{client}:{status}", "%s refused %s %s from %s: %s", self.name,
                                  scope["method"], scope["path"], client, reason)
            await JSONResponse({"error": reason}, status_code=status)(scope, receive, send)
            return
        received = 0

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise HTTPException(413, f"request body larger than {self.max_body} bytes")
            return message

        await self.app(scope, capped_receive, send)

    def _refusal(self, scope: Scope, headers: Headers) -> tuple[int, str] | None:
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return 413, f"request body larger than {self.max_body} bytes"
        if scope["method"] in SAFE_METHODS:
            return None
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            return 415, "a request that changes anything must be sent as application/json"
        origin = headers.get("origin")
        if origin is None and not self.require_origin:
            return None
        if not same_origin(origin, headers.get("host")):
            return 403, "foreign origin: only this page may change anything"
        return None
