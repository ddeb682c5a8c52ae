"""LFW label noise: impostor comparisons that are not impostors, listed with a reason each.

The list lives in `firmware/eval/lfw_label_noise.toml`. Each entry names two sides, each either a person
(folder name, e.g. `Choi_Sung-hong`) or one image (file stem, e.g. `Elena_de_Chavez_0001`), and why their
comparison is not an impostor comparison: "same person, two names", "photo shows both" (the labelled
person's photo shows the other, and the detector found the other) or "same photo" (the identical picture
filed under two names). Evaluations report their figures with and without these comparisons.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from firmware.errors import DataError

LABEL_NOISE_FILE = Path(__file__).with_name("lfw_label_noise.toml")
REASONS = ("same person, two names", "photo shows both", "same photo")
_IMAGE_STEM = re.compile(r"(.+)_(\d{4})$")


@dataclass(frozen=True)
class Side:
    """A person, or one image of that person when `image` is set (its file stem)."""

    person: str
    image: str | None = None

    @classmethod
    def parse(cls, text: str) -> Side:
        m = _IMAGE_STEM.fullmatch(text)
        return cls(m.group(1), text) if m else cls(text)

    def covers(self, person: str, image: str) -> bool:
        return person == self.person and (self.image is None or image == self.image)


@dataclass(frozen=True)
class Exclusion:
    a: Side
    b: Side
    reason: str


@dataclass(frozen=True)
class LabelNoise:
    """The exclusion list; `excludes(...)` says whether one comparison of two images is label noise."""

    entries: tuple[Exclusion, ...]

    def excludes(self, person_a: str, image_a: str, person_b: str, image_b: str) -> bool:
        """True when the comparison of these two images is listed (in either order)."""
        return any((e.a.covers(person_a, image_a) and e.b.covers(person_b, image_b))
                   or (e.b.covers(person_a, image_a) and e.a.covers(person_b, image_b)) for e in self.entries)

    def linked_people(self) -> set[frozenset[str]]:
        """Pairs of people with at least one listed comparison: a search of one is not a search for an
        impostor among the other's photos, so identification leaves such entries out of that search."""
        return {frozenset((e.a.person, e.b.person)) for e in self.entries}

    def excluded_pairs(self, stems: Sequence[str], people: Sequence[str]) -> list[tuple[int, int]]:
        """Index pairs (i < j) of the given images whose comparison is listed."""
        by_person: dict[str, list[int]] = {}
        for i, p in enumerate(people):
            by_person.setdefault(p, []).append(i)
        out: set[tuple[int, int]] = set()
        for e in self.entries:
            for i in by_person.get(e.a.person, []):
                if not e.a.covers(people[i], stems[i]):
                    continue
                for j in by_person.get(e.b.person, []):
                    if e.b.covers(people[j], stems[j]) and i != j:
                        out.add((min(i, j), max(i, j)))
        return sorted(out)


def load_label_noise(path: Path = LABEL_NOISE_FILE) -> LabelNoise:
    """Read and check the exclusion list (every entry needs two sides and one of the known reasons)."""
    try:
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DataError(f"cannot read the label-noise list {path}: {exc}") from exc
    entries = []
    for i, raw in enumerate(doc.get("exclude", []), 1):
        if not isinstance(raw, dict) or set(raw) != {"a", "b", "reason", "evidence"}:
            raise DataError(f"{path}: entry {i} needs exactly a, b, reason and evidence")
        if raw["reason"] not in REASONS:
            raise DataError(f"{path}: entry {i} reason {raw['reason']!r} is not one of {', '.join(REASONS)}")
        entries.append(Exclusion(Side.parse(str(raw["a"])), Side.parse(str(raw["b"])), str(raw["reason"])))
    return LabelNoise(tuple(entries))


NO_EXCLUSIONS = LabelNoise(())
