"""Reading Labeled Faces in the Wild: image paths, View 2 pairs files, and the demographic label files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from firmware.errors import DataError


@dataclass(frozen=True, slots=True)
class Pair:
    """One verification pair: two image files and whether they show the same person; `fold` from 0."""

    a: Path
    b: Path
    same: bool
    fold: int
    person_a: str
    person_b: str


def image_path(images: Path, name: str, number: int) -> Path:
    """`images/<Name>/<Name>_NNNN.jpg`, LFW's naming."""
    return images / name / f"{name}_{number:04d}.jpg"


def read_pairs(pairs_file: Path, images: Path) -> list[Pair]:
    """Parse a View 2 pairs file: a header `folds n`, then per fold n same and n different lines."""
    try:
        lines = [ln.split() for ln in pairs_file.read_text().splitlines() if ln.strip()]
    except OSError as exc:
        raise DataError(f"cannot read pairs file {pairs_file}: {exc.strerror}") from exc
    if not lines or len(lines[0]) != 2 or not all(t.isdigit() for t in lines[0]):
        raise DataError(f"{pairs_file}: first line must be '<folds> <pairs per fold>', got {lines[:1]}")
    folds, n = int(lines[0][0]), int(lines[0][1])
    body = lines[1:]
    if len(body) != folds * 2 * n:
        raise DataError(f"{pairs_file}: header promises {folds}×{2 * n} pairs, file has {len(body)} lines")
    pairs: list[Pair] = []
    for i, tok in enumerate(body):
        fold = i // (2 * n)
        try:
            if len(tok) == 3:
                pairs.append(Pair(image_path(images, tok[0], int(tok[1])), image_path(images, tok[0], int(tok[2])),
                                  True, fold, tok[0], tok[0]))
            elif len(tok) == 4:
                pairs.append(Pair(image_path(images, tok[0], int(tok[1])), image_path(images, tok[2], int(tok[3])),
                                  False, fold, tok[0], tok[2]))
            else:
                raise ValueError
        except ValueError as exc:
            raise DataError(f"{pairs_file}: line {i + 2} is not a pair: {' '.join(tok)!r}") from exc
    return pairs


def people(images: Path) -> dict[str, list[Path]]:
    """Every person folder under `images` with its images, sorted, for identification protocols."""
    if not images.is_dir():
        raise DataError(f"image folder {images} does not exist")
    out = {d.name: sorted(d.glob("*.jpg")) for d in sorted(images.iterdir()) if d.is_dir()}
    out = {k: v for k, v in out.items() if v}
    if not out:
        raise DataError(f"no <Name>/*.jpg images under {images}")
    return out


def iter_images(images: Path) -> Iterator[Path]:
    for files in people(images).values():
        yield from files


def read_labels(labels_dir: Path) -> dict[str, dict[str, str]]:
    """Group labels: {'gender': {image file name: male|female}, 'race': {person: label}} where present.

    Images named in both gender lists are left out (ambiguous); race labels with several values
    (e.g. "african,caucasian") are kept as one group named "mixed".
    """
    out: dict[str, dict[str, str]] = {}
    male, female = labels_dir / "lfw_gender_male_names.txt", labels_dir / "lfw_gender_female_names.txt"
    if male.is_file() and female.is_file():
        m = set(male.read_text().split())
        f = set(female.read_text().split())
        out["gender"] = {**{n: "male" for n in m - f}, **{n: "female" for n in f - m}}
    race = labels_dir / "lfw_race_dict.json"
    if race.is_file():
        try:
            data = json.loads(race.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{race} is not valid JSON: {exc}") from exc
        out["race"] = {k: ("mixed" if "," in v else v) for k, v in data.items()}
    if not out:
        raise DataError(f"no label files (lfw_gender_*_names.txt, lfw_race_dict.json) in {labels_dir}")
    return out
