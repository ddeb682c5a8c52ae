"""Map a cosine similarity to the 0..1 score operators and policy speak in.

score = 1 / (1 + exp(−(slope · (cosine − cosine_at_threshold) + logit(threshold))))

`slope` comes from a logistic fit of same/different LFW pairs (how fast confidence grows with cosine);
`cosine_at_threshold` is the operating point: the cosine at which the open-set FPIR on LFW's identification
protocol is 0.1 % (see firmware/eval/calibrate.py); `far` records the per-comparison false-match rate there.
So the policy threshold (0.6 by default) sits exactly at that operating point, and a score reads as "how far
past the operating point", not as a probability of identity. The constants are fitted by `lfr eval
calibrate` and stored in `models/calibration.toml` with the figures behind them.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from firmware.errors import ModelError

CALIBRATION_FILE = "calibration.toml"


@dataclass(frozen=True)
class ScoreCalibration:
    """The fitted mapping; `threshold` is the 0..1 score that `cosine_at_threshold` maps to."""

    slope: float
    cosine_at_threshold: float
    threshold: float = 0.6
    far: float = 1e-6

    def score(self, cosine: np.ndarray | float) -> np.ndarray:
        """0..1 scores for cosine similarities (any shape)."""
        z = self.slope * (np.asarray(cosine, dtype=np.float64) - self.cosine_at_threshold) + _logit(self.threshold)
        return 1.0 / (1.0 + np.exp(-z))

    def cosine(self, score: float) -> float:
        """The cosine at which the score equals `score` (inverse of `score`)."""
        if not 0.0 < score < 1.0:
            raise ValueError(f"score must lie strictly between 0 and 1, got {score}")
        return self.cosine_at_threshold + (_logit(score) - _logit(self.threshold)) / self.slope


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def load_calibration(models_dir: Path) -> ScoreCalibration:
    """Read models/calibration.toml; a missing or malformed file is a ModelError naming it."""
    path = models_dir / CALIBRATION_FILE
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        return ScoreCalibration(float(data["slope"]), float(data["cosine_at_threshold"]),
                                float(data["threshold"]), float(data["far"]))
    except FileNotFoundError as exc:
        raise ModelError(f"no score calibration at {path}; run `lfr eval calibrate`") from exc
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"score calibration {path} is malformed: {exc}") from exc
