"""Enrolment: a verified bundle is enrolled entry by entry with a per-entry report; a refused bundle never
reaches the enroller; reference images are stored upright and without metadata."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
import pytest
from bundle_helpers import PEOPLE, Build, Keys, PulledStick, members_of, write_members
from PIL import Image

from firmware.errors import ModelError
from firmware.hardware.clock import FakeClock
from firmware.watchlist import errors as E
from firmware.watchlist.duplicates import cosine_similarity, find_duplicate_subjects
from firmware.watchlist.enrol import Enroller, EnrolResult, Rejection
from firmware.watchlist.images import decode_bgr, reference_jpeg
from firmware.watchlist.importer import ImportResult, ProgressCallback, enrol_bundle
from firmware.watchlist.signing import TrustedKey
from firmware.watchlist.verify import verify_bundle


def verify_and_enrol(source: Path | BinaryIO, trusted: Mapping[str, TrustedKey], clock: FakeClock,
                     enroller: Enroller, on_progress: ProgressCallback | None = None) -> ImportResult:
    """The two steps `install_bundle` runs before its swap: verify, then enrol."""
    return enrol_bundle(verify_bundle(source, trusted, clock), enroller, on_progress)


def pixel_digest(image_bgr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(image_bgr).tobytes()).hexdigest()


class ScriptedEnroller:
    """Test stand-in, not face recognition: the embedding is the image's 8x8 grey thumbnail, and images
    whose pixel digest is scripted are rejected with the scripted reason."""

    def __init__(self, rejections: dict[str, Rejection] | None = None, dims: int = 64) -> None:
        self.rejections = rejections or {}
        self.calls = 0
        self.dims = dims

    def enrol(self, image_bgr: np.ndarray) -> EnrolResult:
        self.calls += 1
        reason = self.rejections.get(pixel_digest(image_bgr))
        if reason is not None:
            return EnrolResult.rejected(reason, "scripted")
        grey = cv2.resize(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY), (8, 8), interpolation=cv2.INTER_AREA)
        v = grey.astype(np.float32).ravel()[: self.dims] - 100.0
        return EnrolResult.accepted(v * 3.0)  # deliberately not unit length: the importer normalises


def test_round_trip(good_bundle: Path, keys: Keys, clock: FakeClock) -> None:
    progress: list[tuple[int, int]] = []
    enroller = ScriptedEnroller()
    result = verify_and_enrol(good_bundle, keys.trusted, clock, enroller, lambda d, t: progress.append((d, t)))
    assert progress == [(i, PEOPLE) for i in range(1, PEOPLE + 1)]
    assert result.bundle_sha256 == hashlib.sha256(good_bundle.read_bytes()).hexdigest()
    assert result.signer_fingerprint in keys.trusted
    assert len(result.accepted) == PEOPLE and not result.rejected
    for r in result.entries:
        assert r.embedding is not None and r.embedding.dtype == np.float32 and r.embedding.shape == (64,)
        assert abs(float(np.linalg.norm(r.embedding)) - 1.0) < 1e-5
        assert r.reference_jpeg is not None
        ref = cv2.imdecode(np.frombuffer(r.reference_jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert ref.shape == (250, 250, 3)
    report = result.report()
    assert report["accepted"] == PEOPLE and report["rejected"] == []
    assert report["deployment_ref"] == "OP-2026-117" and report["bundle_sha256"] == result.bundle_sha256


def test_rejected_entries_are_reported_with_their_reason(good_bundle: Path, keys: Keys,
                                                         clock: FakeClock) -> None:
    m = members_of(good_bundle)
    names = [n for n in m if n.startswith("images/")]
    script = {pixel_digest(decode_bgr(m[names[1]])): Rejection.SEVERAL_FACES,
              pixel_digest(decode_bgr(m[names[3]])): Rejection.TOO_BLURRED}
    result = verify_and_enrol(good_bundle, keys.trusted, clock, ScriptedEnroller(script))
    assert [r.entry.id for r in result.accepted] == ["W-000", "W-002"]
    assert [(r.entry.id, r.rejection) for r in result.rejected] == [("W-001", Rejection.SEVERAL_FACES),
                                                                   ("W-003", Rejection.TOO_BLURRED)]
    assert all(r.embedding is None and r.reference_jpeg is None for r in result.rejected)
    assert result.report()["rejected"] == [{"id": "W-001", "reason": "several faces", "detail": "scripted"},
                                           {"id": "W-003", "reason": "too blurred", "detail": "scripted"}]


def test_refused_bundle_never_reaches_the_enroller(good_bundle: Path, keys: Keys, clock: FakeClock,
                                                   tmp_path: Path) -> None:
    m = members_of(good_bundle)
    name = [n for n in m if n.startswith("images/")][-1]
    m[name] = m[name][:-10] + bytes(10)
    enroller = ScriptedEnroller()
    with pytest.raises(E.ImageHashMismatch):
        verify_and_enrol(write_members(tmp_path / "bad.lfrw", m), keys.trusted, clock, enroller)
    assert enroller.calls == 0


def test_expired_bundle_never_reaches_the_enroller(good_bundle: Path, keys: Keys) -> None:
    enroller = ScriptedEnroller()
    with pytest.raises(E.Expired):
        verify_and_enrol(good_bundle, keys.trusted, FakeClock(2e9), enroller)
    assert enroller.calls == 0


def test_pulled_stick_during_import(good_bundle: Path, keys: Keys, clock: FakeClock) -> None:
    data = good_bundle.read_bytes()
    enroller = ScriptedEnroller()
    with pytest.raises(E.BundleReadError, match="nothing was changed"):
        verify_and_enrol(io.BufferedReader(PulledStick(data, 4096)), keys.trusted, clock, enroller)
    assert enroller.calls == 0


class BrokenEnroller:
    def __init__(self, outputs: list[np.ndarray]) -> None:
        self.outputs = outputs

    def enrol(self, image_bgr: np.ndarray) -> EnrolResult:
        return EnrolResult.accepted(self.outputs.pop(0))


@pytest.mark.parametrize("outputs, fragment", [
    ([np.full(64, np.nan, np.float32)], "unusable embedding"),
    ([np.zeros(64, np.float32)], "unusable embedding"),
    ([np.ones((8, 8), np.float32)], "unusable embedding"),
    ([np.ones(64, np.float32), np.ones(32, np.float32)], "differs from the 64-d"),
])
def test_unusable_embeddings_are_a_model_error(good_bundle: Path, keys: Keys, clock: FakeClock,
                                               outputs: list[np.ndarray], fragment: str) -> None:
    with pytest.raises(ModelError, match=fragment):
        verify_and_enrol(good_bundle, keys.trusted, clock, BrokenEnroller(outputs + [np.ones(64)] * PEOPLE))


def test_enrol_result_holds_exactly_one_outcome() -> None:
    with pytest.raises(ValueError):
        EnrolResult()
    with pytest.raises(ValueError):
        EnrolResult(embedding=np.ones(4), rejection=Rejection.NO_FACE)


def test_exif_orientation_is_applied_and_metadata_dropped(lfw_sample: list[Path]) -> None:
    """A phone portrait stored sideways (EXIF orientation 6) is turned upright; the stored reference JPEG
    carries no EXIF (no GPS, no camera serial)."""
    face = Image.open(lfw_sample[0]).crop((0, 0, 250, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    exif[0x010F] = "PhoneMaker"
    buf = io.BytesIO()
    face.save(buf, "JPEG", exif=exif.tobytes())
    upright = decode_bgr(buf.getvalue())
    assert upright.shape == (250, 200, 3)
    ref = reference_jpeg(upright)
    assert b"Exif" not in ref and b"PhoneMaker" not in ref


def test_reference_jpeg_is_bounded(lfw_sample: list[Path]) -> None:
    big = cv2.resize(cv2.imread(str(lfw_sample[0])), (2000, 1000))
    ref = cv2.imdecode(np.frombuffer(reference_jpeg(big), np.uint8), cv2.IMREAD_COLOR)
    assert ref.shape == (512, 1024, 3)


def test_duplicate_subjects_are_reported() -> None:
    rng = np.random.default_rng(7)
    emb = rng.normal(size=(6, 128)).astype(np.float32)
    emb[4] = emb[1] + 0.05 * rng.normal(size=128)  # entry E is entry B again, another photo
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    ids = ["A", "B", "C", "D", "E", "F"]
    pairs = find_duplicate_subjects(ids, emb, cosine_similarity, threshold=0.6, block=4)
    assert [(p.id_a, p.id_b) for p in pairs] == [("B", "E")]
    assert 0.99 < pairs[0].score <= 1.0 + 1e-6


def test_duplicate_check_with_the_imported_embeddings(keys: Keys, clock: FakeClock, build: Build,
                                                      images_dir: Path, tmp_path: Path) -> None:
    """The same photo listed under two ids is caught from the embeddings the import produced."""
    first = sorted(images_dir.iterdir())[0]
    rows = [f"P-{i},Person {i},wanted,r,{p.name}" for i, p in enumerate(sorted(images_dir.iterdir()))]
    (images_dir / "copy.jpg").write_bytes(first.read_bytes())
    csv_path = tmp_path / "dup.csv"
    rows.append("P-copy,Again,wanted,r,copy.jpg")
    csv_path.write_text("id,name,category,reason,image\n" + "\n".join(rows))
    result = verify_and_enrol(build(entries_csv=csv_path), keys.trusted, clock, ScriptedEnroller())
    ids = [r.entry.id for r in result.accepted]
    emb = np.stack([r.embedding for r in result.accepted if r.embedding is not None])
    pairs = find_duplicate_subjects(ids, emb, cosine_similarity, threshold=0.999)
    assert [(p.id_a, p.id_b) for p in pairs] == [("P-0", "P-copy")]
