"""Socket set-up both ends of the link share: CURVE roles, limits, ZMTP keepalives, timings from config."""

from __future__ import annotations

import zmq

from firmware.config import LinkConfig
from firmware.link.keys import KeyPair
from firmware.link.messages import MAX_HEADER_BYTES, MAX_JPEG_BYTES
from firmware.link.protocol import Timings

ZAP_DOMAIN = b"lfr-link"
POLL_MS = 50
"""Worker poll timeout in milliseconds: how fast a stop request or a newly written alert is noticed."""
MAX_FRAME_BYTES = MAX_JPEG_BYTES + MAX_HEADER_BYTES + 64
"""libzmq drops a peer sending a larger frame before allocating it (the preview packs header and JPEG)."""


def timings(config: LinkConfig) -> Timings:
    return Timings(heartbeat_interval=config.heartbeat_interval, link_timeout=config.link_timeout,
                   resend_interval=config.resend_interval, window=config.window)


def _common(sock: zmq.Socket) -> None:
    sock.linger = 0
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
    sock.setsockopt(zmq.HEARTBEAT_IVL, 1000)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3000)
    sock.setsockopt(zmq.HEARTBEAT_TTL, 3000)


def curve_server(sock: zmq.Socket, keypair: KeyPair) -> None:
    """Make `sock` a CURVE server; clients are then checked by the context's ZAP authenticator."""
    _common(sock)
    sock.curve_secretkey = keypair.secret
    sock.curve_publickey = keypair.public
    sock.curve_server = True
    sock.zap_domain = ZAP_DOMAIN


def curve_client(sock: zmq.Socket, keypair: KeyPair, server_public: bytes) -> None:
    """Make `sock` a CURVE client that only talks to the server holding `server_public`'s secret."""
    _common(sock)
    sock.setsockopt(zmq.RECONNECT_IVL, 100)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
    sock.curve_secretkey = keypair.secret
    sock.curve_publickey = keypair.public
    sock.curve_serverkey = server_public


def endpoint(host: str, port: int) -> str:
    """`tcp://host:port`; port 0 means any free port (for binding in tests)."""
    return f"tcp://{host}:{port if port else '*'}"


def bound_port(sock: zmq.Socket) -> int:
    return int(sock.getsockopt_string(zmq.LAST_ENDPOINT).rsplit(":", 1)[1])
