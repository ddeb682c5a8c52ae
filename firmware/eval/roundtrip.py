"""Watchlist round trip: build a signed bundle of N people, import it into a fresh store, then search the
other photos of those people (and photos of people not listed) against the active list as the pipeline does.

Everything runs through the appliance's own code: `build_bundle`, `install_bundle` (verify, enrol, swap),
`load_active` and `WatchlistIndex.search`. Listed people are drawn (fixed seed) among LFW people with at
least two photos; their first photo is the reference, the others (at most `max_probes` each) are probes.
As many people not listed give one photo each as impostor probes. A probe whose face fails detection or the
quality gate is never embedded by the pipeline, so it counts as not found (and is reported).

TPIR = probes of listed people whose best match is their own entry at or above the threshold, over all such
probes (a person whose reference photo was rejected at enrolment cannot be found: that counts against it);
`tpir_enrolled` counts only the probes of people who were enrolled. FPIR = impostor probes with any entry at
or above the threshold.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from firmware.errors import DataError
from firmware.eval.lfw import people
from firmware.hardware.clock import SystemClock
from firmware.match.score import ScoreCalibration
from firmware.store import deployments
from firmware.store.db import open_db
from firmware.watchlist.active import load_active
from firmware.watchlist.bundle import build_bundle
from firmware.watchlist.enrol import RecognizerEnroller
from firmware.watchlist.images import decode_bgr
from firmware.watchlist.install import install_bundle
from firmware.watchlist.signing import init_signing_keys, load_private_key, load_trusted_keys

SEED = 20261122
REF = "EVAL-ROUNDTRIP"


@dataclass(frozen=True)
class RoundTrip:
    """Counts behind TPIR and FPIR; `subjects_found` = listed people found in at least one other photo."""

    subjects: int
    accepted: int
    rejected: dict[str, int]
    probes: int
    enrolled_probes: int
    probes_not_embedded: int
    found: int
    subjects_found: int
    impostor_probes: int
    impostor_alerts: int
    duplicates: int
    threshold: float

    @property
    def tpir(self) -> float:
        return self.found / self.probes if self.probes else 0.0

    @property
    def tpir_enrolled(self) -> float:
        return self.found / self.enrolled_probes if self.enrolled_probes else 0.0

    @property
    def fpir(self) -> float:
        return self.impostor_alerts / self.impostor_probes if self.impostor_probes else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "tpir": round(self.tpir, 4), "fpir": round(self.fpir, 4),
                "tpir_enrolled": round(self.tpir_enrolled, 4),
                "subject_tpir": round(self.subjects_found / self.accepted, 4) if self.accepted else 0.0}


def pick_people(images: Path, subjects: int, seed: int = SEED) -> tuple[dict[str, list[Path]], list[Path]]:
    """`subjects` people with 2+ photos to list, and one photo each of as many other people (impostors)."""
    everyone = people(images)
    multi = sorted(n for n, files in everyone.items() if len(files) >= 2)
    if len(multi) < subjects:
        raise DataError(f"{images} has {len(multi)} people with two or more photos, fewer than {subjects}")
    rng = np.random.default_rng(seed)
    listed = sorted(rng.choice(multi, size=subjects, replace=False).tolist())
    others = sorted(set(everyone) - set(listed))
    strangers = sorted(rng.choice(others, size=min(subjects, len(others)), replace=False).tolist())
    return {n: everyone[n] for n in listed}, [everyone[n][0] for n in strangers]


def run(images: Path, work: Path, enroller: RecognizerEnroller, calibration: ScoreCalibration, *,
        subjects: int = 200, max_probes: int = 5, seed: int = SEED) -> RoundTrip:
    """The whole round trip in the empty folder `work` (keys, bundle, database are written there)."""
    listed, strangers = pick_people(images, subjects, seed)
    ref_dir = work / "images"
    ref_dir.mkdir(parents=True)
    rows = ["id,name,category,reason,image"]
    for i, (name, files) in enumerate(listed.items()):
        shutil.copy(files[0], ref_dir / files[0].name)
        rows.append(f"RT-{i:04d},{name.replace('_', ' ')},wanted,round-trip evaluation,{files[0].name}")
    (work / "entries.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    keys = init_signing_keys(work / "hq")
    trusted = work / "trusted"
    trusted.mkdir()
    shutil.copy(keys.public, trusted / "hq.pub")
    (trusted / "hq.pub").chmod(0o644)
    clock = SystemClock()
    now = clock.time()
    bundle = build_bundle(images_dir=ref_dir, entries_csv=work / "entries.csv", deployment_ref=REF,
                          valid_from=now - 3600, valid_until=now + 12 * 3600,
                          private_key=load_private_key(keys.private), out=work / "roundtrip.lfrw",
                          created_by="eval", clock=clock)
    db = open_db(work / "lfr.sqlite3")
    try:
        deployments.start(db, authority=REF, officer="eval", location="eval", threshold=calibration.threshold,
                          clock=clock, actor="eval")
        outcome = install_bundle(db, bundle.path, trusted_keys=load_trusted_keys(trusted), clock=clock,
                                 enroller=enroller, calibration=calibration, threshold=calibration.threshold,
                                 actor="eval")
        loaded = load_active(db, calibration)
    finally:
        db.close()
    assert loaded is not None
    index, _ = loaded
    ids = {r.entry.id: r.entry.name.replace(" ", "_") for r in outcome.result.accepted}
    probes = enrolled_probes = not_embedded = found = 0
    enrolled = set(ids.values())
    found_subjects: set[str] = set()
    for name, files in listed.items():
        for path in files[1:1 + max_probes]:
            probes += 1
            enrolled_probes += int(name in enrolled)
            emb = enroller.enrol(decode_bgr(path.read_bytes())).embedding
            if emb is None:
                not_embedded += 1
                continue
            best = index.best(emb)
            if best and best.score >= calibration.threshold and ids.get(best.subject_id) == name:
                found += 1
                found_subjects.add(name)
    alerts = 0
    for path in strangers:
        emb = enroller.enrol(decode_bgr(path.read_bytes())).embedding
        best = index.best(emb) if emb is not None else None
        alerts += int(best is not None and best.score >= calibration.threshold)
    rejected: dict[str, int] = {}
    for r in outcome.result.rejected:
        key = r.rejection.value if r.rejection else "?"
        rejected[key] = rejected.get(key, 0) + 1
    return RoundTrip(subjects, len(outcome.result.accepted), rejected, probes, enrolled_probes, not_embedded,
                     found,
                     len(found_subjects), len(strangers), alerts, len(outcome.duplicates),
                     calibration.threshold)
