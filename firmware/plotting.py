"""Charts for the laptop and the bench machine: matplotlib, which the van does not install (`plots` extra).

The van's own report draws its chart as inline SVG (`store/report_chart.py`); only `lfr eval verify --plot`,
`lfr bench ... --plot` and the scripts behind docs/benchmarks.md need matplotlib.
"""

from __future__ import annotations

from typing import Any

from firmware.errors import LfrError


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg back-end (no display). matplotlib is not installed on the van (the
    `plots` extra: `pip install 'lfr[plots]'` on the laptop or bench machine); LfrError saying so if absent."""
    try:
        import matplotlib
    except ImportError as exc:
        raise LfrError("charts need matplotlib, which the van does not install: on the laptop or bench "
                       "machine, pip install 'lfr[plots]' (or make venv)") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
