"""Installing a bundle on the van: the round trip through the real enroller and a real sqlite file, the
atomic swap the pipeline sees, and every refusal leaving the previous list exactly as it was."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path
from typing import Any, BinaryIO

import cv2
import numpy as np
import pytest
import sqlite_utils
from bundle_helpers import NOW, VALID_UNTIL, Build, Keys, PulledStick, members_of, resign, write_csv, write_members
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from test_bundle_verify import BAD

from firmware.config import REPO_MODELS_DIR
from firmware.errors import ModelError, PolicyError
from firmware.hardware.clock import FakeClock
from firmware.match.score import ScoreCalibration, load_calibration
from firmware.store import audit, deployments, watchlists
from firmware.watchlist import errors as E
from firmware.watchlist.active import active_version, load_active
from firmware.watchlist.enrol import EnrolResult, RecognizerEnroller, Rejection
from firmware.watchlist.install import DeploymentRefMismatch, InstallOutcome, install_bundle
from firmware.watchlist.manifest import parse_instant

SUBJECTS = 20
Roster = tuple[list[Path], dict[str, list[Path]], list[Path]]
DLIB_FACES = "faces/dlib/examples/faces"


def install(db: sqlite_utils.Database, bundle: Path | BinaryIO, keys: Keys, clock: FakeClock, enroller: Any,
            calibration: ScoreCalibration, **kw: Any) -> InstallOutcome:
    return install_bundle(db, bundle, trusted_keys=keys.trusted, clock=clock, enroller=enroller,
                          calibration=calibration, threshold=0.6, actor="test", **kw)


def snapshot(db: sqlite_utils.Database) -> tuple[str, str | None]:
    """SHA-256 over every watchlist entry row (ids, names, images, embeddings) and the pipeline's stamp."""
    digest = hashlib.sha256()
    for row in db.execute("SELECT * FROM watchlist_entries ORDER BY id"):
        digest.update(repr(row).encode())
    return digest.hexdigest(), active_version(db)


def audit_actions(db: sqlite_utils.Database) -> list[str]:
    return [r[0] for r in db.execute("SELECT action FROM audit ORDER BY seq")]


@pytest.fixture(scope="session")
def roster(lfw_dir: Path) -> Roster:
    """20 listed LFW people with 3+ photos (reference, then probes) and one photo of 20 other people."""
    folders = sorted(p for p in (lfw_dir / "images").iterdir() if p.is_dir())
    multi = [sorted(p.glob("*.jpg")) for p in folders if len(list(p.glob("*.jpg"))) >= 3]
    listed = multi[:: max(1, len(multi) // SUBJECTS)][:SUBJECTS]
    names = {f[0].parent.name for f in listed}
    strangers = [sorted(p.glob("*.jpg"))[0] for p in folders[::200] if p.name not in names][:SUBJECTS]
    return [f[0] for f in listed], {f[0].parent.name: f[1:3] for f in listed}, strangers


@pytest.fixture()
def roster_bundle(tmp_path: Path, build: Build,
                  roster: Roster) -> Path:
    refs = tmp_path / "roster"
    refs.mkdir()
    rows = []
    for i, src in enumerate(roster[0]):
        shutil.copy(src, refs / src.name)
        rows.append(f"R-{i:03d},{src.parent.name},wanted,ref {i},{src.name}")
    csv_path = write_csv(tmp_path / "roster.csv", "id,name,category,reason,image", rows)
    return build(images_dir=refs, entries_csv=csv_path, out=tmp_path / "out" / "roster.lfrw")


@pytest.mark.slow
def test_round_trip_other_photos_are_found(store: sqlite_utils.Database, roster_bundle: Path, keys: Keys,
                                           clock: FakeClock, enroller: RecognizerEnroller,
                                           calibration: ScoreCalibration,
                                           roster: Roster) -> None:
    assert active_version(store) is None
    outcome = install(store, roster_bundle, keys, clock, enroller, calibration)
    rec = outcome.record
    assert rec.bundle_sha256 == hashlib.sha256(roster_bundle.read_bytes()).hexdigest()
    assert rec.signer_fingerprint in keys.trusted and rec.deployment_ref == "OP-2026-117"
    # Refused here: two too blurred, and one or two with a second face at least half the subject's size
    # (Larry_Thompson_0001 has a face cut by the left border, which the int8 detector scores 0.65).
    assert rec.accepted + rec.rejected == SUBJECTS and rec.accepted >= SUBJECTS - 4
    assert rec.valid_until == parse_instant(VALID_UNTIL, "u") and rec.is_active
    loaded = load_active(store, calibration)
    assert loaded is not None
    index, subjects = loaded
    assert len(index) == rec.accepted and index.version == active_version(store)
    name_of = {sid: s.name for sid, s in subjects.items()}
    probes = found = 0
    for person, photos in roster[1].items():
        if person not in name_of.values():
            continue
        for photo in photos:
            emb = enroller.enrol(cv2.imread(str(photo))).embedding
            if emb is None:
                continue
            probes += 1
            best = index.best(emb)
            found += int(best is not None and best.score >= 0.6 and name_of[best.subject_id] == person)
    assert probes >= 25 and found / probes >= 0.85
    fitted = load_calibration(REPO_MODELS_DIR)
    for photo in roster[2]:
        emb = enroller.enrol(cv2.imread(str(photo))).embedding
        if emb is not None:
            best = index.best(emb)
            assert best is None or best.score < 0.6, f"{photo.name} matched {best}"
            assert fitted.score(best.cosine) < 0.6 if best else True
    assert audit_actions(store)[-2:] == ["watchlist_verified", "watchlist_import"]
    assert audit.verify(store).ok


def test_the_audit_keeps_facts_not_names(store: sqlite_utils.Database, good_bundle: Path, keys: Keys,
                                         clock: FakeClock, enroller: RecognizerEnroller,
                                         calibration: ScoreCalibration) -> None:
    outcome = install(store, good_bundle, keys, clock, enroller, calibration)
    row = store.execute("SELECT details FROM audit WHERE action = 'watchlist_import'").fetchone()
    details = json.loads(row[0])
    assert details["bundle_sha256"] == outcome.record.bundle_sha256 and details["authority"] == "OP-2026-117"
    assert details["accepted"] == outcome.record.accepted
    all_audit = " ".join(r[0] for r in store.execute("SELECT details FROM audit"))
    for r in outcome.result.entries:
        assert r.entry.name not in all_audit and r.entry.reason not in all_audit
    assert outcome.record.report.keys() == {"entries", "accepted", "rejected", "duplicates", "photos_fused",
                                            "photos_rejected"}


def test_a_second_import_swaps_the_list(store: sqlite_utils.Database, good_bundle: Path, build: Build,
                                        keys: Keys, clock: FakeClock, enroller: RecognizerEnroller,
                                        calibration: ScoreCalibration, tmp_path: Path) -> None:
    first = install(store, good_bundle, keys, clock, enroller, calibration)
    v1 = active_version(store)
    clock.advance(60)
    second_bundle = build(created_by="hq-second", out=tmp_path / "out" / "second.lfrw")
    second = install(store, second_bundle, keys, clock, enroller, calibration)
    assert active_version(store) not in (None, v1)
    assert {r[0] for r in store.execute("SELECT DISTINCT bundle_sha256 FROM watchlist_entries")} == \
        {second.record.bundle_sha256}
    old = store.execute("SELECT wiped_at, wipe_reason FROM watchlists WHERE id = ?",
                        [first.record.id]).fetchone()
    assert old[0] == clock.time() and old[1] == f"replaced by bundle {second.record.bundle_sha256}"
    assert watchlists.active(store) == second.record
    assert audit_actions(store)[-3:] == ["watchlist_verified", "watchlist_wipe", "watchlist_import"]


def test_duplicate_subjects_are_reported(store: sqlite_utils.Database, build: Build, keys: Keys,
                                         clock: FakeClock, enroller: RecognizerEnroller,
                                         calibration: ScoreCalibration, lfw_dir: Path,
                                         tmp_path: Path) -> None:
    """One person listed twice under two ids (two different photos) is flagged; the rest are not."""
    refs = tmp_path / "dup"
    refs.mkdir()
    for src in ["Colin_Powell/Colin_Powell_0001.jpg", "Colin_Powell/Colin_Powell_0002.jpg",
                "Gloria_Macapagal_Arroyo/Gloria_Macapagal_Arroyo_0001.jpg"]:
        shutil.copy(lfw_dir / "images" / src, refs / Path(src).name)
    csv_path = write_csv(tmp_path / "dup.csv", "id,name,category,reason,image",
                         ["D-1,A,wanted,r,Colin_Powell_0001.jpg", "D-2,B,wanted,r,Colin_Powell_0002.jpg",
                          "D-3,C,wanted,r,Gloria_Macapagal_Arroyo_0001.jpg"])
    outcome = install(store, build(images_dir=refs, entries_csv=csv_path), keys, clock, enroller, calibration)
    assert [(d.id_a, d.id_b) for d in outcome.duplicates] == [("D-1", "D-2")]
    assert outcome.duplicates[0].score >= 0.6
    assert outcome.record.report["duplicates"][0]["id_a"] == "D-1"


def test_rejected_entries_are_reported(store: sqlite_utils.Database, build: Build, keys: Keys,
                                       clock: FakeClock, enroller: RecognizerEnroller,
                                       calibration: ScoreCalibration, lfw_dir: Path, shared_data: Path,
                                       tmp_path: Path) -> None:
    refs = tmp_path / "mixed"
    refs.mkdir()
    shutil.copy(lfw_dir / "images/Colin_Powell/Colin_Powell_0001.jpg", refs / "good.jpg")
    shutil.copy(shared_data / DLIB_FACES / "dogs.jpg", refs / "dogs.jpg")
    shutil.copy(shared_data / DLIB_FACES / "2008_001322.jpg", refs / "group.jpg")
    tiny = cv2.resize(cv2.imread(str(refs / "good.jpg")), (70, 70), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(refs / "tiny.png"), tiny)
    csv_path = write_csv(tmp_path / "mixed.csv", "id,name,category,reason,image",
                         ["M-1,A,wanted,r,good.jpg", "M-2,B,wanted,r,dogs.jpg", "M-3,C,wanted,r,group.jpg",
                          "M-4,D,wanted,r,tiny.png"])
    outcome = install(store, build(images_dir=refs, entries_csv=csv_path), keys, clock, enroller, calibration)
    assert outcome.record.accepted == 1 and outcome.record.rejected == 3
    assert [(r["id"], r["reason"]) for r in outcome.record.report["rejected"]] == [
        ("M-2", "no face"), ("M-3", "several faces"), ("M-4", "face too small")]
    assert [r[0] for r in store.execute("SELECT subject_id FROM watchlist_entries")] == ["M-1"]


# -- refusals: each leaves the previous list (rows and pipeline stamp) exactly as it was ---------------------
class FailingEnroller:
    """Enrols the first `ok` images with the real enroller, then fails as a broken accelerator would."""

    def __init__(self, real: RecognizerEnroller, ok: int) -> None:
        self.real, self.left = real, ok

    def enrol(self, image_bgr: np.ndarray) -> EnrolResult:
        if self.left == 0:
            raise ModelError("embedder returned garbage (simulated accelerator failure)")
        self.left -= 1
        return self.real.enrol(image_bgr)


class NoFaceEnroller:
    """Finds no face anywhere: every entry is rejected."""

    def enrol(self, image_bgr: np.ndarray) -> EnrolResult:
        return EnrolResult.rejected(Rejection.NO_FACE, "test")


def _tampered(bundle: Path, tmp_path: Path) -> Path:
    m = members_of(bundle)
    name = [n for n in m if n.startswith("images/")][0]
    m[name] = m[name][:-200] + bytes(200)
    return write_members(tmp_path / "tampered.lfrw", m)


def _foreign(bundle: Path, tmp_path: Path) -> Path:
    m = members_of(bundle)
    resign(m, Ed25519PrivateKey.generate(), lambda doc: None)
    return write_members(tmp_path / "foreign.lfrw", m)


def _other_deployment(bundle: Path, tmp_path: Path, keys: Keys) -> Path:
    m = members_of(bundle)
    resign(m, keys.private, lambda doc: doc.update(deployment_ref="OP-2026-999"))
    return write_members(tmp_path / "other.lfrw", m)


@pytest.mark.parametrize("case", ["tampered", "foreign_key", "expired", "other_deployment",
                                  "no_entry_enrolled", "enroller_fails", "write_fails", "missing_file",
                                  "second_bundle_on_stick", "stick_pulled_mid_read"])
def test_a_refusal_leaves_the_previous_list_untouched(case: str, store: sqlite_utils.Database,
                                                      good_bundle: Path, keys: Keys, clock: FakeClock,
                                                      enroller: RecognizerEnroller,
                                                      calibration: ScoreCalibration, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch, build: Build) -> None:
    install(store, good_bundle, keys, clock, enroller, calibration)
    # a later list from HQ (the same one again would be a no-op: see test_rollback.py)
    newer = build(clock=FakeClock(NOW + 60), out=tmp_path / "out" / "newer.lfrw")
    before = snapshot(store)
    probe = load_active(store, calibration)
    assert probe is not None
    bundle, use, error = good_bundle, enroller, E.BundleRefused
    if case == "tampered":
        bundle, error = _tampered(good_bundle, tmp_path), E.ImageHashMismatch
    elif case == "foreign_key":
        bundle, error = _foreign(good_bundle, tmp_path), E.UntrustedSigner
    elif case == "expired":
        clock.set(parse_instant(VALID_UNTIL, "u"))
        error = E.Expired
    elif case == "other_deployment":
        bundle, error = _other_deployment(good_bundle, tmp_path, keys), DeploymentRefMismatch
    elif case == "no_entry_enrolled":
        bundle, use, error = newer, NoFaceEnroller(), watchlists.NothingEnrolled
    elif case == "enroller_fails":
        bundle, use, error = newer, FailingEnroller(enroller, 2), ModelError
    elif case == "write_fails":
        real_append = audit.append

        def failing_append(db: sqlite_utils.Database, **kw: Any) -> int:
            if kw["action"] == "watchlist_import":  # after the old rows were deleted and the new inserted
                raise OSError("disk full (simulated)")
            return real_append(db, **kw)
        monkeypatch.setattr(audit, "append", failing_append)
        bundle, error = newer, OSError
    elif case == "missing_file":
        bundle, error = tmp_path / "nowhere.lfrw", E.BundleNotFound
    elif case == "second_bundle_on_stick":
        stick = tmp_path / "stick"
        stick.mkdir()
        shutil.copy(good_bundle, stick / "a.lfrw")
        shutil.copy(good_bundle, stick / "b.lfrw")
        bundle, error = stick, E.SeveralBundles
    elif case == "stick_pulled_mid_read":
        data = good_bundle.read_bytes()
        bundle, error = io.BufferedReader(PulledStick(data, len(data) // 2)), E.BundleReadError
    with pytest.raises(error):
        install(store, bundle, keys, clock, use, calibration)
    assert snapshot(store) == before
    after = load_active(store, calibration)
    assert after is not None and after[0].subject_ids == probe[0].subject_ids
    assert np.array_equal(after[0].matrix, probe[0].matrix)
    monkeypatch.undo()
    refused = store.execute("SELECT details FROM audit WHERE action = 'watchlist_import_refused'").fetchone()
    expected_code = getattr(error, "code", error.__name__)
    assert refused is not None and json.loads(refused[0])["code"] == expected_code
    assert audit.verify(store).ok


def test_no_import_without_an_open_deployment(store: sqlite_utils.Database, good_bundle: Path, keys: Keys,
                                              clock: FakeClock, enroller: RecognizerEnroller,
                                              calibration: ScoreCalibration) -> None:
    deployments.stop(store, clock=clock, actor="test")
    with pytest.raises(PolicyError, match="no open deployment"):
        install(store, good_bundle, keys, clock, enroller, calibration)
    assert store.execute("SELECT COUNT(*) FROM watchlist_entries").fetchone()[0] == 0
    assert store.execute("SELECT COUNT(*) FROM watchlists").fetchone()[0] == 0


def test_a_deployment_stopped_during_enrolment_gets_no_list(store: sqlite_utils.Database, good_bundle: Path,
                                                            keys: Keys, clock: FakeClock,
                                                            enroller: RecognizerEnroller,
                                                            calibration: ScoreCalibration) -> None:
    """The deployment is re-checked inside the swap transaction: a list must not outlive its deployment."""
    class StoppingEnroller:
        def enrol(self, image_bgr: np.ndarray) -> EnrolResult:
            if deployments.current(store) is not None:
                deployments.stop(store, clock=clock, actor="other-process")
            return enroller.enrol(image_bgr)

    with pytest.raises(PolicyError, match="was stopped during the import"):
        install(store, good_bundle, keys, clock, StoppingEnroller(), calibration)
    assert store.execute("SELECT COUNT(*) FROM watchlist_entries").fetchone()[0] == 0


def test_a_foreign_reference_can_be_allowed_by_config(store: sqlite_utils.Database, good_bundle: Path,
                                                      keys: Keys, clock: FakeClock,
                                                      enroller: RecognizerEnroller,
                                                      calibration: ScoreCalibration, tmp_path: Path) -> None:
    bundle = _other_deployment(good_bundle, tmp_path, keys)
    outcome = install(store, bundle, keys, clock, enroller, calibration, require_ref_match=False)
    assert outcome.record.deployment_ref == "OP-2026-999"
    verified = json.loads(store.execute("SELECT details FROM audit WHERE action = 'watchlist_verified'")
                          .fetchone()[0])
    assert verified["reference_matches"] is False and verified["authority"] == "OP-2026-117"


# -- wipe and expiry -------------------------------------------------------------------------------------
def test_expiry_wipes_at_valid_until_and_only_then(store: sqlite_utils.Database, good_bundle: Path,
                                                   keys: Keys,
                                                   clock: FakeClock, enroller: RecognizerEnroller,
                                                   calibration: ScoreCalibration) -> None:
    outcome = install(store, good_bundle, keys, clock, enroller, calibration)
    seq_before = audit.head(store)[0]
    early = watchlists.expire_if_due(store, clock=clock, actor="timer")
    assert not early.expired and early.watchlist == outcome.record and audit.head(store)[0] == seq_before
    clock.set(parse_instant(VALID_UNTIL, "u"))
    due = watchlists.expire_if_due(store, clock=clock, actor="timer")
    assert due.expired and due.entries_wiped == outcome.record.accepted
    assert due.watchlist is not None and due.watchlist.wiped_at == clock.time()
    assert "valid-until passed" in (due.watchlist.wipe_reason or "")
    assert active_version(store) is None and load_active(store, calibration) is None
    assert store.execute("SELECT COUNT(*) FROM watchlist_entries").fetchone()[0] == 0
    assert audit_actions(store)[-1] == "watchlist_wipe"
    again = watchlists.expire_if_due(store, clock=clock, actor="timer")
    assert not again.expired and again.watchlist is None


def test_stopping_the_deployment_marks_the_list_wiped(store: sqlite_utils.Database, good_bundle: Path,
                                                      keys: Keys, clock: FakeClock,
                                                      enroller: RecognizerEnroller,
                                                      calibration: ScoreCalibration) -> None:
    outcome = install(store, good_bundle, keys, clock, enroller, calibration)
    clock.advance(3600)
    deployments.stop(store, clock=clock, actor="test")
    rec = watchlists.latest(store, outcome.record.deployment_id)
    assert rec is not None and rec.wiped_at == NOW + 3600 and rec.wipe_reason == "deployment stopped"
    assert watchlists.active(store) is None


@pytest.mark.parametrize("name", list(BAD))
def test_every_bad_bundle_leaves_the_active_list_matching(name: str, store: sqlite_utils.Database,
                                                          good_bundle: Path, keys: Keys, clock: FakeClock,
                                                          enroller: RecognizerEnroller,
                                                          calibration: ScoreCalibration, tmp_path: Path) -> None:
    """Each refusal of the bundle format, run through the import: own error, list and index unchanged."""
    install(store, good_bundle, keys, clock, enroller, calibration)
    before = snapshot(store)
    probe = load_active(store, calibration)
    assert probe is not None
    make, error, fragment = BAD[name]
    bad = make(members_of(good_bundle), keys.private, tmp_path / "bad.lfrw")
    with pytest.raises(error, match=fragment):
        install(store, bad, keys, clock, enroller, calibration)
    assert snapshot(store) == before
    after = load_active(store, calibration)
    assert after is not None and np.array_equal(after[0].matrix, probe[0].matrix)
    own = after[0].matrix[0]
    assert after[0].best(own) == probe[0].best(own)  # the pipeline still matches the list it had
    refused = store.execute("SELECT details FROM audit WHERE action = 'watchlist_import_refused'").fetchone()
    assert json.loads(refused[0])["code"] == error.code
