"""Bundle format version 2: several reference photos per entry, fused into one template at enrolment, each
photo's verdict reported, duplicates found on templates; version 1 bundles still import."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import sqlite_utils
from bundle_helpers import Build, Keys, members_of, resign, write_csv, write_members
from test_watchlist_install import install

from firmware.config import REPO_MODELS_DIR, AppConfig
from firmware.hardware.clock import FakeClock
from firmware.match.fusion import fuse
from firmware.match.operating_point import ThresholdPolicy
from firmware.match.score import ScoreCalibration
from firmware.watchlist import errors as E
from firmware.watchlist.enrol import RecognizerEnroller
from firmware.watchlist.manifest import MAX_PHOTOS
from firmware.watchlist.verify import verify_bundle

Trio = dict[str, list[Path]]


@pytest.fixture(scope="module")
def trio(lfw_dir: Path) -> Trio:
    """Three LFW people with at least 4 photos each (3 to enrol, 1 spare)."""
    folders = sorted(p for p in (lfw_dir / "images").iterdir() if p.is_dir())
    rich = [p for p in folders if len(list(p.glob("*.jpg"))) >= 4][:3]
    return {p.name: sorted(p.glob("*.jpg"))[:4] for p in rich}


@pytest.fixture()
def photo_dir(tmp_path: Path, trio: Trio) -> Path:
    d = tmp_path / "photos"
    d.mkdir()
    for files in trio.values():
        for f in files:
            shutil.copy(f, d / f.name)
    grey = np.full((240, 240, 3), 128, np.uint8)  # no face in it: enrolment must reject this one photo
    cv2.imwrite(str(d / "blank.jpg"), grey)
    return d


def _columns_csv(tmp_path: Path, trio: Trio) -> Path:
    rows = []
    for i, (name, files) in enumerate(trio.items()):
        extra = "blank.jpg" if i == 0 else ""
        rows.append(f"M-{i},{name.replace('_', ' ')},wanted,ref {i},{files[0].name},{files[1].name},"
                    f"{files[2].name},{extra}")
    return write_csv(tmp_path / "multi.csv", "id,name,category,reason,image,image2,image3,image4", rows)


def test_several_image_columns_build_a_version_2_bundle(build: Build, photo_dir: Path, tmp_path: Path,
                                                        trio: Trio, keys: Keys, clock: FakeClock) -> None:
    bundle = build(images_dir=photo_dir, entries_csv=_columns_csv(tmp_path, trio))
    doc = json.loads(members_of(bundle)["manifest.json"])
    assert doc["format_version"] == 2
    assert [len(e["images"]) for e in doc["entries"]] == [4, 3, 3]
    verified = verify_bundle(bundle, keys.trusted, clock)
    assert len(verified.images) == 10 and verified.manifest.summary()["photos"] == 10


def test_a_folder_per_entry(build: Build, tmp_path: Path, trio: Trio, keys: Keys, clock: FakeClock) -> None:
    root = tmp_path / "people"
    for name, files in trio.items():
        (root / name).mkdir(parents=True)
        for f in files[:3]:
            shutil.copy(f, root / name / f.name)
    rows = [f"F-{i},{name},wanted,ref,{name}" for i, name in enumerate(trio)]
    bundle = build(images_dir=root, entries_csv=write_csv(tmp_path / "f.csv", "id,name,category,reason,image", rows))
    entries = verify_bundle(bundle, keys.trusted, clock).manifest.entries
    assert [len(e.photos) for e in entries] == [3, 3, 3]


def test_multi_photo_import_fuses_templates_and_reports_each_photo(
        store: sqlite_utils.Database, build: Build, photo_dir: Path, tmp_path: Path, trio: Trio, keys: Keys,
        clock: FakeClock, enroller: RecognizerEnroller, calibration: ScoreCalibration) -> None:
    bundle = build(images_dir=photo_dir, entries_csv=_columns_csv(tmp_path, trio))
    policy = ThresholdPolicy.from_config(AppConfig(), REPO_MODELS_DIR)
    outcome = install(store, bundle, keys, clock, enroller, calibration, policy=policy)
    first = outcome.result.entries[0]
    assert first.is_accepted and len(first.photos) == 4
    assert [v.is_accepted for v in first.photos] == [True, True, True, False]
    assert first.photos[3].rejection is not None and first.photos[3].rejection.value == "no face"
    assert first.photos_fused == 3
    # the template is the mean of the accepted photos' embeddings, L2-normalised: one row per entry
    singles = [enroller.enrol(cv2.imread(str(f))).embedding for f in list(trio.values())[0][:3]]
    assert float(first.embedding @ fuse(singles)) == pytest.approx(1.0, abs=1e-5)
    rejected = outcome.record.report["photos_rejected"]
    assert {"id": "M-0", "image": first.photos[3].image, "reason": "no face",
            "detail": first.photos[3].detail} in rejected
    assert len(rejected) == sum(not v.is_accepted for r in outcome.result.accepted for v in r.photos)
    op = outcome.record.report["operating_point"]
    fused = [r.photos_fused for r in outcome.result.accepted]
    assert op["templates_per_entry"] == pytest.approx(np.mean(fused)) and op["list_size"] == len(fused)
    assert op["templates_per_entry"] > 1


def test_the_duplicate_check_works_on_templates(
        store: sqlite_utils.Database, build: Build, photo_dir: Path, tmp_path: Path, trio: Trio, keys: Keys,
        clock: FakeClock, enroller: RecognizerEnroller, calibration: ScoreCalibration) -> None:
    """One person entered twice, from different photos each time, is found as a duplicate pair."""
    name, files = next(iter(trio.items()))
    rows = [f"D-1,{name},wanted,ref,{files[0].name},{files[1].name}",
            f"D-2,{name} again,wanted,ref,{files[2].name},{files[3].name}"]
    csv_path = write_csv(tmp_path / "dup.csv", "id,name,category,reason,image,image2", rows)
    outcome = install(store, build(images_dir=photo_dir, entries_csv=csv_path), keys, clock, enroller, calibration)
    assert [(d.id_a, d.id_b) for d in outcome.duplicates] == [("D-1", "D-2")]


def test_version_2_manifests_are_checked(good_bundle: Path, keys: Keys, clock: FakeClock,
                                          tmp_path: Path) -> None:
    members = members_of(good_bundle)
    assert json.loads(members["manifest.json"])["format_version"] == 1  # one photo each: still version 1

    def to_v2(photos: int):  # type: ignore[no-untyped-def]
        def edit(doc: dict) -> None:
            doc["format_version"] = 2
            for e in doc["entries"]:
                e["images"] = [{"image": e.pop("image"), "sha256": e.pop("sha256")}] * photos
        return edit

    m = dict(members)
    resign(m, keys.private, to_v2(MAX_PHOTOS + 1))
    with pytest.raises(E.ManifestInvalid, match="1 to 5 photos"):
        verify_bundle(write_members(tmp_path / "six.lfrw", m), keys.trusted, clock)
    m = dict(members)
    resign(m, keys.private, to_v2(2))
    with pytest.raises(E.ManifestInvalid, match="share the image"):
        verify_bundle(write_members(tmp_path / "twice.lfrw", m), keys.trusted, clock)
    m = dict(members)
    resign(m, keys.private, to_v2(1))
    verified = verify_bundle(write_members(tmp_path / "one.lfrw", m), keys.trusted, clock)
    assert verified.manifest.format_version == 2 and all(len(e.photos) == 1 for e in verified.manifest.entries)


def test_the_import_command_reports_each_photo(tmp_path: Path, keys: Keys, photo_dir: Path, trio: Trio,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import time

    from firmware.cli.main import main
    from firmware.watchlist.manifest import format_instant

    config = tmp_path / "appliance.toml"
    config.write_text(f'[paths]\nstate_dir = "{tmp_path / "state"}"\n'
                      f'[watchlist]\ntrusted_keys_dir = "{keys.trusted_dir}"\n')
    now = time.time()
    assert main(["watchlist", "build", "--images", str(photo_dir), "--entries", str(_columns_csv(tmp_path, trio)),
                 "--deployment", "OP-CLI", "--valid-from", format_instant(now - 3600),
                 "--valid-until", format_instant(now + 8 * 3600), "--key", str(keys.private_path),
                 "--out", str(tmp_path / "stick" / "day.lfrw"), "--config", str(config)]) == 0
    cfg = ["--config", str(config)]
    assert main(["deployment", "start", "--authority", "OP-CLI", "--officer", "PC A", "--location", "Sq",
                 *cfg]) == 0
    capsys.readouterr()
    assert main(["watchlist", "import", str(tmp_path / "stick"), *cfg]) == 0
    out = capsys.readouterr().out
    assert "M-0" in out and "3 of 4 photos fused" in out and "rejected: no face" in out
