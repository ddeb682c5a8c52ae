"""Running the viewer: store + console + web app under uvicorn, in the foreground or on a thread (tests)."""

from __future__ import annotations

import logging
import signal
import socket
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import uvicorn
from starlette.routing import BaseRoute
from uvicorn.config import WS_PROTOCOLS

from firmware.config import AppConfig
from firmware.errors import ViewerError
from firmware.viewer.app import LOCAL_HOSTS, create_app
from firmware.viewer.console import Console
from firmware.viewer.store import ViewerStore
from firmware.viewer.threaded_server import ThreadedServer

log = logging.getLogger(__name__)


def viewer_db_path(cfg: AppConfig) -> Path:
    """`viewer.state_dir` (with ~ expanded) / `viewer.db_file`."""
    return Path(cfg.viewer.state_dir).expanduser() / cfg.viewer.db_file


def open_console(cfg: AppConfig) -> Console:
    """The configured store and console (not started)."""
    store = ViewerStore(viewer_db_path(cfg))
    return Console(store, cfg.link, retention_days=cfg.viewer.retention_days, sound=cfg.viewer.sound)


def _uvicorn(console: Console, host: str, port: int, extra_routes: Sequence[BaseRoute] = ()) -> uvicorn.Server:
    # uvicorn >= 0.35 deprecates its legacy websockets protocol in favour of the sans-I/O one
    ws = "websockets-sansio" if "websockets-sansio" in WS_PROTOCOLS else "websockets"
    hosts = tuple(dict.fromkeys((*LOCAL_HOSTS, host)))
    app = create_app(console, hosts=hosts, extra_routes=extra_routes)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, ws=ws,
                            lifespan="off")
    return uvicorn.Server(config)


def _listen(host: str, port: int) -> socket.socket:
    """The page's listening socket, bound before anything starts so a taken port is a clear error."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family = infos[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        raise ViewerError(f"cannot serve the viewer on {host}:{port}: {exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(infos[0][4])
        sock.listen(64)
    except OSError as exc:
        sock.close()
        raise ViewerError(f"cannot serve the viewer on {host}:{port}: {exc.strerror} (another `lfr viewer` "
                          "running? choose another port with --port)") from exc
    return sock


def _stopping(signum: int, frame: FrameType | None) -> None:
    log.info("viewer stopping (%s)", signal.Signals(signum).name)


def serve(console: Console, host: str, port: int, cfg: AppConfig | None = None) -> None:
    """Start the console's link and serve the page until Ctrl-C or SIGTERM, then close everything.

    uvicorn shuts down on either signal and then raises it again with the handlers it found; quiet ones
    are installed first so that second delivery does not kill the process before the link is closed.
    With `cfg.handheld.enabled`, the handhelds' HTTPS listener runs beside it (docs/handheld.md).
    """
    listener = _listen(host, port)
    extra: list[BaseRoute] = []
    handheld_server = None
    if cfg is not None and cfg.handheld.enabled:
        from firmware.viewer.handheld.operator import operator_routes
        from firmware.viewer.handheld.server import HandheldServer, open_handhelds

        site, cert = open_handhelds(cfg, console, viewer_db_path(cfg).parent)
        extra = operator_routes(site)
        handheld_server = HandheldServer(site.handhelds, cert, cfg.handheld.host, cfg.handheld.port)
    previous = {s: signal.signal(s, _stopping) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with console:
            log.info("viewer at http://%s:%d/ (appliance %s:%d)", host, port,
                     console.link_config.appliance_host, console.link_config.alerts_port)
            _uvicorn(console, host, port, extra).run(sockets=[listener])
    finally:
        if handheld_server is not None:
            handheld_server.close()
        if console.handhelds is not None:
            console.handhelds.store.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class ViewerServer(ThreadedServer):
    """The web app on a background thread, for tests and the benchmark; `port` 0 picks a free one.
    Closing it leaves the console alone: that is the caller's."""

    def __init__(self, console: Console, host: str = "127.0.0.1", port: int = 0,
                 extra_routes: Sequence[BaseRoute] = ()) -> None:
        self.console = console
        super().__init__(_uvicorn(console, host, port, extra_routes), "viewer-http",
                         f"the viewer web server did not start on {host}:{port}")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"
