"""Search files for byte patterns that would betray a face: embedding windows, JPEG crop windows, pixels.

The privacy test collects "needles" from what the pipeline computed for faces that matched nothing (16-byte
windows of their float32 embeddings, windows from the middle of their JPEG crops, rows of their aligned
faces) and searches every file the appliance wrote, SQLite database, WAL and shared-memory files included.
Any hit is a leak. Search: each needle's first 8 bytes as a little-endian uint64, looked up at all 8 byte
alignments of the file with numpy, then confirmed in full, so thousands of needles scan megabytes in
fractions of a second.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MIN_NEEDLE = 8
MIN_DISTINCT = 10  # distinct byte values a window needs: flat runs (black borders, zero floats) prove nothing


def _telling(window: bytes) -> bool:
    return len(set(window)) >= min(MIN_DISTINCT, len(window) // 2)


@dataclass(frozen=True)
class Leak:
    """Needle `label` was found in `path` at byte `offset`."""

    path: Path
    offset: int
    label: str


def embedding_needles(embedding: np.ndarray, label: str, window: int = 16) -> dict[bytes, str]:
    """Windows of a float32 embedding's bytes, spread over the vector; its float64 and JSON-text forms."""
    raw = np.asarray(embedding, dtype="<f4").tobytes()
    offsets = range(0, len(raw) - window + 1, len(raw) // 4)
    needles = {raw[o:o + window]: f"{label} float32@{o}" for o in offsets if _telling(raw[o:o + window])}
    wide = np.asarray(embedding[:4], dtype="<f8").tobytes()
    if _telling(wide[:16]):
        needles[wide[:16]] = f"{label} float64"
    for i, v in enumerate(embedding[:2]):
        text = repr(float(v)).encode()  # how json.dumps or a log line would print it
        if len(text) >= MIN_NEEDLE:
            needles[text] = f"{label} json[{i}]"
    return needles


def blob_needles(blob: bytes, label: str, window: int = 32, count: int = 3) -> dict[bytes, str]:
    """`count` windows from the middle half of a blob (a JPEG's entropy-coded data, not its common header),
    skipping flat ones."""
    if len(blob) < 4 * window:
        return {blob: label} if _telling(blob) else {}
    start, stop = len(blob) // 4, 3 * len(blob) // 4 - window
    step = max(1, (stop - start) // (4 * count))
    found: dict[bytes, str] = {}
    for o in range(start, stop, step):  # the first `count` windows that are not flat
        if _telling(blob[o:o + window]):
            found[blob[o:o + window]] = f"{label}@{o}"
            if len(found) == count:
                break
    return found


def files_under(*roots: Path) -> list[Path]:
    """Every regular file below the roots (a root that is a file counts itself)."""
    out: list[Path] = []
    for root in roots:
        if root.is_file():
            out.append(root)
        elif root.is_dir():
            out.extend(p for p in sorted(root.rglob("*")) if p.is_file())
    return out


def scan(paths: Iterable[Path], needles: Mapping[bytes, str]) -> list[Leak]:
    """Every occurrence of any needle (each at least 8 bytes) in the files."""
    table: dict[int, list[bytes]] = {}
    for needle in needles:
        if len(needle) < MIN_NEEDLE:
            raise ValueError(f"needle {needles[needle]!r} is shorter than {MIN_NEEDLE} bytes")
        table.setdefault(int.from_bytes(needle[:8], "little"), []).append(needle)
    keys = np.array(sorted(table), dtype=np.uint64)
    leaks: list[Leak] = []
    for path in paths:
        data = path.read_bytes()
        for align in range(8):
            usable = (len(data) - align) // 8
            if usable <= 0:
                continue
            words = np.frombuffer(data, dtype="<u8", count=usable, offset=align)
            for i in np.nonzero(np.isin(words, keys))[0]:
                offset = align + 8 * int(i)
                for needle in table[int(words[i])]:
                    if data.startswith(needle, offset):
                        leaks.append(Leak(path, offset, needles[needle]))
    return leaks
