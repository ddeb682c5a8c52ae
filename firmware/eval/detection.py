"""Detection recall on hand-labelled boxes (dlib's imglab XML): does the detector find the faces?"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2

from firmware.detect.blazeface import FaceDetector
from firmware.detect.detection import iou
from firmware.errors import DataError

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    boxes: list[Box]


def read_imglab(xml_file: Path) -> list[LabelledImage]:
    """Images and their face boxes (x1, y1, x2, y2) from an imglab XML file; ignored boxes are skipped."""
    try:
        root = ET.parse(xml_file).getroot()
    except (OSError, ET.ParseError) as exc:
        raise DataError(f"cannot read labelled boxes from {xml_file}: {exc}") from exc
    out = []
    for img in root.iter("image"):
        boxes = []
        for b in img.iter("box"):
            if b.get("ignore") == "1":
                continue
            x, y, w, h = (float(b.get(k, 0)) for k in ("left", "top", "width", "height"))
            boxes.append((x, y, x + w, y + h))
        out.append(LabelledImage(xml_file.parent / img.get("file", ""), boxes))
    return out


def detection_recall(detector: FaceDetector, xml_file: Path, iou_threshold: float = 0.5,
                     tiles: tuple[int, int] = (1, 1)) -> dict[str, Any]:
    """Recall and precision at `iou_threshold`: each labelled box matched to at most one detection."""
    labelled = read_imglab(xml_file)
    found = total = dets_total = matched_dets = 0
    ious = []
    for item in labelled:
        img = cv2.imread(str(item.path))
        if img is None:
            raise DataError(f"cannot read image {item.path} named in {xml_file}")
        dets = detector.detect_tiled(img, tiles)
        dets_total += len(dets)
        used: set[int] = set()
        for box in item.boxes:
            total += 1
            best, best_iou = -1, 0.0
            for j, d in enumerate(dets):
                v = iou(box, d.box)
                if j not in used and v > best_iou:
                    best, best_iou = j, v
            if best >= 0 and best_iou >= iou_threshold:
                used.add(best)
                found += 1
                ious.append(best_iou)
        matched_dets += len(used)
    return {"images": len(labelled), "boxes": total, "found": found, "recall": found / total if total else 0.0,
            "detections": dets_total, "precision": matched_dets / dets_total if dets_total else 0.0,
            "mean_iou_of_found": sum(ious) / len(ious) if ious else 0.0, "iou_threshold": iou_threshold}
