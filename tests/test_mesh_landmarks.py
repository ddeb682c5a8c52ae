"""Face-mesh alignment keypoints on real LFW faces: right places, rotation followed, bad input refused."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from firmware.accel.runtime import Model
from firmware.config import AppConfig, parse_config
from firmware.detect.detection import LEFT_EYE, MOUTH, NOSE, RIGHT_EYE, Detection
from firmware.embed.align import align_face
from firmware.embed.mesh_landmarks import MeshLandmarker
from firmware.embed.recognizer import Recognizer
from firmware.errors import ConfigError, DataError, ModelError

REPO = Path(__file__).resolve().parent.parent
FACES = ("Aaron_Peirsol/Aaron_Peirsol_0001.jpg", "AJ_Cook/AJ_Cook_0001.jpg", "Colin_Powell/Colin_Powell_0001.jpg",
         "Gloria_Macapagal_Arroyo/Gloria_Macapagal_Arroyo_0001.jpg")


@pytest.fixture(scope="module")
def landmarker() -> MeshLandmarker:
    return MeshLandmarker(Model(REPO / "models/face_landmarks_float.tflite", threads=1))


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer.from_config(AppConfig(), precision="float")


def _face(recognizer: Recognizer, path: Path) -> tuple[np.ndarray, Detection]:
    img = cv2.imread(str(path))
    assert img is not None, path
    dets = recognizer.main_face(img)
    assert dets, f"no face detected in {path}"
    return img, dets[0]


@pytest.mark.parametrize("name", FACES)
def test_mesh_keypoints_sit_on_the_face(landmarker: MeshLandmarker, recognizer: Recognizer, lfw_dir: Path,
                                        name: str) -> None:
    img, det = _face(recognizer, lfw_dir / "images" / name)
    kp = landmarker.keypoints(img, det)
    assert kp is not None, "the mesh model should see the face"
    r_eye, l_eye, nose, mouth = kp[RIGHT_EYE], kp[LEFT_EYE], kp[NOSE], kp[MOUTH]
    assert r_eye[0] < nose[0] < l_eye[0], "the person's right eye is on the image's left, the nose between"
    assert max(r_eye[1], l_eye[1]) < nose[1] < mouth[1], "eyes above the nose, the mouth below it"
    eye_dist = float(np.linalg.norm(l_eye - r_eye))
    for i, limit in ((RIGHT_EYE, 0.12), (LEFT_EYE, 0.12), (NOSE, 0.15), (MOUTH, 0.2)):
        off = float(np.linalg.norm(kp[i] - det.keypoints[i]))
        assert off < limit * eye_dist, f"keypoint {i} is {off:.1f} px from BlazeFace's (eyes {eye_dist:.0f} px apart)"


def test_mesh_follows_a_rotated_face(landmarker: MeshLandmarker, recognizer: Recognizer, lfw_dir: Path) -> None:
    """The ROI is turned so the eyes are level: a face tilted by 25° must come back with its eye line at 25°."""
    img = cv2.imread(str(lfw_dir / "images" / FACES[0]))
    h, w = img.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), -25.0, 1.0)  # negative: clockwise on screen
    tilted = cv2.warpAffine(img, turn, (w, h))
    _, det = _face(recognizer, lfw_dir / "images" / FACES[0])
    kp_upright = landmarker.keypoints(img, det)
    dets = recognizer.main_face(tilted)
    assert dets, "BlazeFace should find the tilted face"
    det_tilted = dets[0]
    kp = landmarker.keypoints(tilted, det_tilted)
    assert kp is not None and kp_upright is not None
    dx, dy = kp[LEFT_EYE] - kp[RIGHT_EYE]
    assert math.degrees(math.atan2(dy, dx)) == pytest.approx(25.0, abs=3.0)
    expected = np.hstack([kp_upright, np.ones((6, 1), np.float32)]) @ turn.T
    eye_dist = float(np.linalg.norm(kp_upright[LEFT_EYE] - kp_upright[RIGHT_EYE]))
    for i in (RIGHT_EYE, LEFT_EYE, NOSE, MOUTH):
        assert np.linalg.norm(kp[i] - expected[i]) < 0.1 * eye_dist


def test_recognizer_aligns_on_the_mesh_when_given_a_landmarker(landmarker: MeshLandmarker, recognizer: Recognizer,
                                                               lfw_dir: Path) -> None:
    img, det = _face(recognizer, lfw_dir / "images" / FACES[1])
    with_mesh = Recognizer(recognizer.detector, recognizer.embedder, recognizer.quality, landmarker=landmarker)
    face = with_mesh.face(img, det)
    assert np.array_equal(face.aligned, align_face(img, landmarker.keypoints(img, det)))
    assert not np.array_equal(face.aligned, align_face(img, det.keypoints))
    assert face.quality == recognizer.face(img, det).quality, "the gate reads the detector's keypoints"
    same = float(with_mesh.embed(face) @ recognizer.embed(recognizer.face(img, det)))
    assert same > 0.8, "the same photo aligned either way is the same person"


def test_bad_input_is_refused(landmarker: MeshLandmarker, recognizer: Recognizer, lfw_dir: Path) -> None:
    img, det = _face(recognizer, lfw_dir / "images" / FACES[0])
    with pytest.raises(DataError, match="BGR uint8"):
        landmarker.mesh(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), det)
    with pytest.raises(DataError, match="BGR uint8"):
        landmarker.mesh(img.astype(np.float32), det)
    with pytest.raises(DataError, match="6×2"):
        landmarker.mesh(img, dataclasses.replace(det, keypoints=det.keypoints[:4]))
    with pytest.raises(DataError, match="empty"):
        landmarker.mesh(img, dataclasses.replace(det, box=(10.0, 10.0, 10.0, 10.0)))


def test_a_model_that_is_not_the_face_mesh_is_refused() -> None:
    with pytest.raises(ModelError, match="not a face-mesh model"):
        MeshLandmarker(Model(REPO / "models/face_detector_float.tflite", threads=1))


@pytest.mark.parametrize("precision", ["int8", "float"])
def test_the_default_configuration_aligns_on_the_mesh(precision: str, lfw_dir: Path) -> None:
    rec = Recognizer.from_config(AppConfig(), precision=precision)
    assert rec.landmarker is not None and "face_landmarks" in rec.health()
    img, det = _face(rec, lfw_dir / "images" / FACES[2])
    assert rec.landmarker is not None
    kp = rec.landmarker.keypoints(img, det)
    assert kp is not None
    assert np.array_equal(rec.face(img, det).aligned, align_face(img, kp))
    eyes = float(np.linalg.norm(kp[LEFT_EYE] - kp[RIGHT_EYE]))
    assert np.linalg.norm(kp[:4] - det.keypoints[:4], axis=1).max() < 0.2 * eyes, "int8 mesh on the face too"
    blaze = Recognizer.from_config(parse_config({"embed": {"landmarks": "blazeface"}}), precision=precision)
    assert blaze.landmarker is None and "face_landmarks" not in blaze.health()


def test_an_unknown_landmark_source_is_refused() -> None:
    with pytest.raises(ConfigError, match="embed.landmarks"):
        parse_config({"embed": {"landmarks": "dlib"}})
