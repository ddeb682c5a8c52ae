"""The real enroller on the real models: one clear face is embedded; a photo with no face, several comparable
faces, a tiny face or a blurred face is rejected with the reason the import report shows."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from firmware.watchlist.enrol import RecognizerEnroller, Rejection

DLIB_FACES = "faces/dlib/examples/faces"


def lfw_photo(lfw_dir: Path, person: str, n: int = 1) -> np.ndarray:
    img = cv2.imread(str(lfw_dir / "images" / person / f"{person}_{n:04d}.jpg"))
    assert img is not None
    return img


def test_portraits_give_unit_embeddings_that_tell_people_apart(enroller: RecognizerEnroller,
                                                               lfw_dir: Path) -> None:
    a1, a2 = (enroller.enrol(lfw_photo(lfw_dir, "Colin_Powell", n)) for n in (1, 2))
    b1 = enroller.enrol(lfw_photo(lfw_dir, "Gloria_Macapagal_Arroyo", 1))
    embs = [r.embedding for r in (a1, a2, b1)]
    assert all(e is not None and e.shape == (192,) and e.dtype == np.float32 for e in embs)
    ea1, ea2, eb1 = (e / np.linalg.norm(e) for e in embs)  # type: ignore[operator]
    assert float(ea1 @ ea2) > 0.5 > float(ea1 @ eb1)


def test_most_lfw_portraits_are_accepted(enroller: RecognizerEnroller, lfw_dir: Path) -> None:
    people = sorted(p for p in (lfw_dir / "images").iterdir() if p.is_dir())[:40]
    results = [enroller.enrol(cv2.imread(str(sorted(p.glob("*.jpg"))[0]))) for p in people]
    assert sum(r.rejection is None for r in results) >= 34


def test_a_photo_without_a_face(enroller: RecognizerEnroller, shared_data: Path) -> None:
    dogs = cv2.imread(str(shared_data / DLIB_FACES / "dogs.jpg"))
    assert enroller.enrol(dogs).rejection is Rejection.NO_FACE
    assert enroller.enrol(np.full((300, 300, 3), 128, np.uint8)).rejection is Rejection.NO_FACE


def test_a_group_photo(enroller: RecognizerEnroller, shared_data: Path) -> None:
    group = cv2.imread(str(shared_data / DLIB_FACES / "2008_001322.jpg"))
    result = enroller.enrol(group)
    assert result.rejection is Rejection.SEVERAL_FACES and "faces of comparable size" in result.detail


def test_a_tiny_face(enroller: RecognizerEnroller, lfw_dir: Path) -> None:
    small = cv2.resize(lfw_photo(lfw_dir, "Colin_Powell"), (70, 70), interpolation=cv2.INTER_AREA)
    result = enroller.enrol(small)
    assert result.rejection is Rejection.FACE_TOO_SMALL and "px <" in result.detail


def test_a_blurred_face(enroller: RecognizerEnroller, lfw_dir: Path) -> None:
    blurred = cv2.GaussianBlur(lfw_photo(lfw_dir, "Colin_Powell"), (0, 0), 3.0)
    assert enroller.enrol(blurred).rejection is Rejection.TOO_BLURRED


def test_a_turned_head(enroller: RecognizerEnroller, lfw_dir: Path) -> None:
    """A near-profile reference (yaw proxy 0.86) would match frontal probes badly."""
    result = enroller.enrol(lfw_photo(lfw_dir, "Andy_Dick"))
    assert result.rejection is Rejection.HEAD_TURNED and "yaw" in result.detail


def side_by_side(main: np.ndarray, other: np.ndarray, other_side: int) -> np.ndarray:
    """`main` (250 px) on the right of a 250-px-high canvas, `other` scaled to `other_side` px top left."""
    canvas = np.full((250, 250 + 250, 3), 90, np.uint8)
    canvas[:, 250:] = main
    small = cv2.resize(other, (other_side, other_side), interpolation=cv2.INTER_AREA)
    canvas[:other_side, :other_side] = small
    return canvas


@pytest.mark.parametrize(("other_side", "expected"), [(250, Rejection.SEVERAL_FACES), (110, None)])
def test_a_much_smaller_background_face_is_fine(enroller: RecognizerEnroller, lfw_dir: Path,
                                                other_side: int, expected: Rejection | None) -> None:
    """Two faces of one size are ambiguous; a face under half the subject's size is a passer-by."""
    img = side_by_side(lfw_photo(lfw_dir, "Colin_Powell"), lfw_photo(lfw_dir, "Gloria_Macapagal_Arroyo"),
                       other_side)
    assert len(enroller.recognizer.main_face(img, enroller.pads)) == 2  # both faces really are detected
    assert enroller.enrol(img).rejection is expected


def test_settings_out_of_range(enroller: RecognizerEnroller) -> None:
    with pytest.raises(ValueError, match="pad"):
        RecognizerEnroller(enroller.recognizer, pads=(0.25, 3.0))
    with pytest.raises(ValueError, match="pads"):
        RecognizerEnroller(enroller.recognizer, pads=())
    with pytest.raises(ValueError, match="companion_ratio"):
        RecognizerEnroller(enroller.recognizer, companion_ratio=0.0)
