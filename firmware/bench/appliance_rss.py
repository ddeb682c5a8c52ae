"""Peak resident memory of an appliance-like process on the 1080p scene, sampled from outside.

The child is `lfr bench pipeline --what matrix` with a single cell (one size, one face count, the
configured thread count): one process that loads the models once and runs the camera pipeline, the capture
thread, the newest-frame slot and the hub, as `lfr run` does for one camera, on the composed scene (which
never leaves memory, so no replay files are written). This process polls the child's RSS every 5 ms; the
child also reports its own kernel high-water mark (ru_maxrss), which cannot miss a short peak.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from firmware.bench.memory import MIB, run_sampled
from firmware.errors import LfrError


def child_command(data_dir: Path, config: Path | None, *, size: tuple[int, int], faces: int, threads: int,
                  frames: int, camera_fps: float, tiles: tuple[int, int], churn_frames: int = 0) -> list[str]:
    """The `lfr bench pipeline` command line of the sampled child (same interpreter as this process)."""
    cmd = [sys.executable, "-m", "firmware.cli.main", "bench", "pipeline", "--what", "matrix",
           "--data", str(data_dir), "--sizes", f"{size[0]}x{size[1]}", "--faces", str(faces),
           "--threads", str(threads), "--frames", str(frames), "--warmup", "0", "--camera-fps", str(camera_fps),
           "--tiles", f"{tiles[0]}x{tiles[1]}", "--churn-frames", str(churn_frames), "--rss-frames", "0", "--json"]
    return cmd + (["--config", str(config)] if config is not None else [])


def appliance_rss(data_dir: Path, config: Path | None, *, size: tuple[int, int] = (1920, 1080), faces: int = 10,
                  threads: int = 2, frames: int = 60, camera_fps: float = 30.0,
                  tiles: tuple[int, int] = (3, 2), churn_frames: int = 0) -> dict[str, Any]:
    """Run the child on the scene and return its peak RSS (MiB, from outside and its own) and its fps."""
    cmd = child_command(data_dir, config, size=size, faces=faces, threads=threads, frames=frames,
                        camera_fps=camera_fps, tiles=tiles, churn_frames=churn_frames)
    code, peak, out, err = run_sampled(cmd, interval_s=0.005)
    if code != 0:
        raise LfrError(f"the sampled bench process exited with {code}: {err.strip()[-800:]}")
    child = json.loads(out)
    cell = child["matrix"]["cells"][0]
    return {"size": f"{size[0]}x{size[1]}", "faces": faces, "threads": threads, "frames": frames,
            "peak_rss_mib": round(peak / MIB, 1),
            "child_reported_peak_rss_mib": round(child["process_peak_rss_mib"], 1),
            "throughput_fps": cell["throughput"]["fps"],
            "live_fps": cell.get("live", {}).get("fps")}
