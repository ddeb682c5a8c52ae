"""PNG charts of the benchmark results for docs/benchmarks.md (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from firmware.plotting import pyplot


def plot_stages(r: dict[str, Any], out: Path) -> None:
    """Horizontal bars: p50 per stage, int8 beside float, p99 as an error whisker (log scale, ms)."""
    plt = pyplot()
    names = [k for k in r["stages"]["int8"] if k in r["stages"]["float"]]
    y = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(8, 0.42 * len(names) + 1.5))
    for off, prec, colour in ((-0.2, "int8", "tab:orange"), (0.2, "float", "tab:blue")):
        p50 = np.array([r["stages"][prec][k]["p50_ms"] for k in names])
        p99 = np.array([r["stages"][prec][k]["p99_ms"] for k in names])
        ax.barh(y + off, p50, height=0.4, color=colour, label=f"{prec} p50",
                xerr=[np.zeros_like(p50), np.maximum(p99 - p50, 0)], error_kw={"alpha": 0.5})
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set(xlabel="milliseconds (bar p50, whisker p99)", title="Latency per stage, int8 vs float, same run")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_match(r: dict[str, Any], out: Path) -> None:
    """Search time per probe (p50) against watchlist size, one line per layout, log-log."""
    plt = pyplot()
    sizes = sorted(int(n) for n in r["sizes"])
    layouts = list(r["sizes"][str(sizes[0])])
    layouts = [k for k in layouts if isinstance(r["sizes"][str(sizes[0])][k], dict)]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in layouts:
        ax.loglog(sizes, [r["sizes"][str(n)][name]["p50_ms"] for n in sizes], marker="o", label=name)
    ax.axhline(1.0, color="grey", linestyle=":", label="1 ms target at 100k")
    ax.set(xlabel="watchlist size (subjects)", ylabel="search time per probe, p50 (ms)",
           title="1:N top-3 search, 192-d")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_fps_vs_faces(m: dict[str, Any], out: Path) -> None:
    """Frames per second (throughput, every frame processed) against faces per frame, one line per frame size
    and thread count, with the 30 fps target; the drop rate at the camera's rate as a second panel."""
    plt = pyplot()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.5))
    series: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for c in m["cells"]:
        series.setdefault((c["size"], c["threads"]), []).append(c)
    for (size, threads), cells in sorted(series.items()):
        cells = sorted(cells, key=lambda c: c["faces"])
        faces = [c["faces"] for c in cells]
        style = {"marker": "o", "linestyle": "-" if threads > 1 else "--",
                 "label": f"{size}, {threads} thread{'s' if threads > 1 else ''}"}
        ax.plot(faces, [c["throughput"]["fps"] for c in cells], **style)
        if all("live" in c for c in cells):
            bx.plot(faces, [100 * c["live"]["drop_rate"] for c in cells], **style)
    ax.axhline(30.0, color="grey", linestyle=":", label="30 fps target (1080p, 10 faces)")
    ax.set_ylim(bottom=0)
    ax.set(xlabel="faces per frame", ylabel="frames per second, every frame processed",
           title="Pipeline throughput")
    bx.set(xlabel="faces per frame", ylabel="frames dropped (%)", ylim=(0, 100),
           title=f"Dropped with the camera at {m['spec']['camera_fps']:g} fps")
    for a in (ax, bx):
        a.grid(True, alpha=0.3)
        a.set_xticks(sorted({c["faces"] for c in m["cells"]}))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
