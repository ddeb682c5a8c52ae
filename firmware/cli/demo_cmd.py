"""`lfr demo`: set up a deployment with a signed demo watchlist, run the appliance and the viewer, print the URL.

The appliance (`lfr run`: hub + one replay camera looping over a scene made from registry-package faces) and
the viewer (`lfr viewer`) run as child processes, as on the van and the laptop, paired with CURVE keys made
for the demo. Ctrl-C (or `--seconds`) stops both with SIGINT and waits for them to finish cleanly.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from firmware.cli.common import add_json_argument, emit
from firmware.errors import LfrError

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
STOP_WAIT_S = 20.0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="appliance + viewer on a replay scene with a signed demo watchlist")
    p.add_argument("--state-dir", type=Path, default=REPO / "demo",
                   help="folder for all demo state, remade each run (default: demo/ in the checkout)")
    p.add_argument("--cache-dir", type=Path, default=REPO / ".cache" / "demo",
                   help="where the downloaded demo faces are kept (default: .cache/demo)")
    p.add_argument("--port", type=int, default=8080, help="TCP port of the viewer's page (default 8080)")
    p.add_argument("--seconds", type=float, help="stop after this many seconds (default: run until Ctrl-C)")
    p.add_argument("--cooldown", type=float, default=8.0,
                   help="seconds before the same subject may alert again (default 8, shorter than on a "
                        "real deployment so the looping scene keeps alerting)")
    add_json_argument(p)
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from firmware.demo.prepare import prepare

    if args.seconds is not None and args.seconds <= 0:
        raise LfrError("--seconds must be positive")
    started = time.monotonic()
    setup = prepare(args.state_dir.resolve(), args.cache_dir.resolve(), viewer_port=args.port,
                    cooldown_s=args.cooldown)
    logs = setup.state_dir / "logs"
    logs.mkdir()
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda _n, _f: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        children["appliance"] = _spawn(["run", "--config", str(setup.appliance_config)], logs / "appliance.log")
        children["viewer"] = _spawn(["viewer", "--config", str(setup.viewer_config), "--port", str(args.port)],
                                    logs / "viewer.log")
        url = f"http://127.0.0.1:{args.port}/"
        print(f"\nLFR demo running (set up in {time.monotonic() - started:.0f} s).\n"
              f"  viewer:  {url}   (open it in a browser; decide alerts with S, N or F)\n"
              f"  logs:    {logs}/appliance.log, viewer.log\n"
              f"  other lfr commands on this demo's state (e.g. lfr deployment list, lfr report 1):\n"
              f"    export LFR_CONFIG={shlex.quote(str(setup.appliance_config))}\n"
              f"  Ctrl-C stops everything.\n", flush=True)
        deadline = None if args.seconds is None else time.monotonic() + args.seconds
        while not stop.wait(0.5):
            dead = [n for n, c in children.items() if c.poll() is not None]
            if dead:
                raise LfrError(f"the demo's {dead[0]} exited with status {children[dead[0]].returncode}; "
                               f"see {logs / (dead[0] + '.log')}")
            if deadline is not None and time.monotonic() >= deadline:
                break
    finally:
        codes = _stop(children)
        for s, handler in previous.items():
            signal.signal(s, handler)
    result = {"url": f"http://127.0.0.1:{args.port}/", "state_dir": str(setup.state_dir), "exit": codes,
              "lfr_config": str(setup.appliance_config)}
    emit(args, result, "demo stopped: " + ", ".join(f"{n} exit {c}" for n, c in codes.items()))
    return 0 if all(c == 0 for c in codes.values()) else 1


def _spawn(argv: list[str], log_file: Path) -> subprocess.Popen[bytes]:
    with log_file.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "firmware.cli.main", *argv], stdout=out,
                                stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)


def _stop(children: dict[str, subprocess.Popen[bytes]]) -> dict[str, int]:
    """SIGINT each child (as Ctrl-C would), wait, and kill only what does not stop in STOP_WAIT_S."""
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
    codes = {}
    for name, child in children.items():
        try:
            codes[name] = child.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            log.error("the demo's %s did not stop within %.0f s: killed", name, STOP_WAIT_S)
            child.kill()
            codes[name] = child.wait()
    return codes

