"""Build time: headquarters is refused everything the van would refuse, and a refused build writes nothing."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from bundle_helpers import VALID_UNTIL, Build, Keys, png_bomb, write_csv

from firmware.hardware.clock import FakeClock
from firmware.watchlist import errors as E
from firmware.watchlist.bundle import read_entries_csv
from firmware.watchlist.limits import BundleLimits
from firmware.watchlist.manifest import BASE_CATEGORIES, parse_instant
from firmware.watchlist.verify import verify_bundle

HEADER = "id,name,category,reason,image"


@pytest.fixture()
def first_image(images_dir: Path) -> str:
    return sorted(images_dir.iterdir())[0].name


def _csv(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    return write_csv(tmp_path / "bad.csv", header, rows)


def test_csv_quirks_from_spreadsheets_are_accepted(tmp_path: Path, images_dir: Path, build: Build, keys: Keys,
                                                   clock: FakeClock) -> None:
    """Excel writes a BOM and CRLF, quotes commas, and users type categories in any case: all fine."""
    names = sorted(p.name for p in images_dir.iterdir())
    text = "\ufeffImage, ID ,name,category,reason\r\n" + "".join(
        f'{n},X{i}," Doe, Jane ",WANTED,"robbery, 2026"\r\n' for i, n in enumerate(names)) + "\r\n"
    csv_path = tmp_path / "excel.csv"
    csv_path.write_bytes(text.encode("utf-8"))
    bundle = verify_bundle(build(entries_csv=csv_path), keys.trusted, clock)
    first = bundle.manifest.entries[0]
    assert (first.id, first.name, first.category) == ("X0", "Doe, Jane", "wanted")
    assert first.reason == "robbery, 2026"


@pytest.mark.parametrize("header, fragment", [
    ("id,name,category,image", "missing column(s) reason"),
    ("id,name,category,reason,image,notes", "unexpected column(s) 'notes'"),
    ("id,name,category,reason,image,id", "repeated column(s) id"),
    ("id;name;category;reason;image", "missing column(s) id, name, category, reason, image"),
])
def test_csv_with_wrong_columns(tmp_path: Path, build: Build, header: str, fragment: str) -> None:
    with pytest.raises(E.EntriesCsvInvalid, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        build(entries_csv=write_csv(tmp_path / "c.csv", header, ["A,B,wanted,r,x.jpg"]))


@pytest.mark.parametrize("row, fragment", [
    ("A1,Jane,wanted,reason,{img},extra", "line 2: 6 cells, expected 5"),
    ("A1,Jane,wanted,{img}", "line 2: 4 cells, expected 5"),
])
def test_csv_row_with_wrong_cell_count(tmp_path: Path, build: Build, first_image: str, row: str,
                                       fragment: str) -> None:
    with pytest.raises(E.EntriesCsvInvalid, match=fragment):
        build(entries_csv=_csv(tmp_path, [row.format(img=first_image)]))


def test_csv_not_utf8(tmp_path: Path, build: Build) -> None:
    p = tmp_path / "latin1.csv"
    p.write_bytes(f"{HEADER}\nA1,Ren\xe9,wanted,r,a.jpg\n".encode("latin-1"))
    with pytest.raises(E.EntriesCsvInvalid, match="not UTF-8"):
        build(entries_csv=p)


def test_empty_csv_file(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(E.EntriesCsvInvalid, match="is empty"):
        read_entries_csv(tmp_path / "empty.csv")


def test_header_only_is_an_empty_list(tmp_path: Path, build: Build) -> None:
    with pytest.raises(E.EmptyWatchlist, match="no entries"):
        build(entries_csv=_csv(tmp_path, []))


def test_duplicate_ids_name_both_lines(tmp_path: Path, build: Build, images_dir: Path) -> None:
    a, b = sorted(p.name for p in images_dir.iterdir())[:2]
    with pytest.raises(E.DuplicateId, match="id 'A1' appears on lines 2 and 3"):
        build(entries_csv=_csv(tmp_path, [f"A1,Jane,wanted,r,{a}", f"A1,John,wanted,r,{b}"]))


def test_unknown_category_unless_configured(tmp_path: Path, build: Build, first_image: str) -> None:
    csv_path = _csv(tmp_path, [f"A1,Jane,bail conditions,r,{first_image}"])
    with pytest.raises(E.UnknownCategory, match="'bail conditions' is not one of"):
        build(entries_csv=csv_path)
    assert build(entries_csv=csv_path, categories=(*BASE_CATEGORIES, "bail conditions")).exists()


@pytest.mark.parametrize("cells, error, fragment", [
    ("A1,,wanted,r", E.ManifestInvalid, "name is empty"),
    ("A1,Jane,wanted,", E.ManifestInvalid, "reason is empty"),
    (",Jane,wanted,r", E.ManifestInvalid, "id is empty"),
    ("A1,Jane\x07,wanted,r", E.ManifestInvalid, "control characters"),
    ("A1," + "J" * 201 + ",wanted,r", E.ManifestInvalid, "longer than 200"),
])
def test_bad_text_fields(tmp_path: Path, build: Build, first_image: str, cells: str, error: type,
                         fragment: str) -> None:
    with pytest.raises(error, match=fragment):
        build(entries_csv=_csv(tmp_path, [f"{cells},{first_image}"]))


def _one_image(tmp_path: Path, build: Build, name: str, data: bytes | None = None) -> None:
    if data is not None:
        (tmp_path / "images" / name).write_bytes(data)
    build(entries_csv=_csv(tmp_path, [f"A1,Jane,wanted,r,{name}"]))


def test_image_path_escaping_the_folder(tmp_path: Path, build: Build) -> None:
    (tmp_path / "secret.jpg").write_bytes(b"outside")
    with pytest.raises(E.UnsafePath, match="escapes the bundle"):
        _one_image(tmp_path, build, "../secret.jpg")


def test_image_absolute_path(tmp_path: Path, build: Build, images_dir: Path, first_image: str) -> None:
    with pytest.raises(E.AbsolutePath, match="absolute path"):
        _one_image(tmp_path, build, str(images_dir / first_image))


def test_image_symlink_leaving_the_folder(tmp_path: Path, build: Build, images_dir: Path,
                                          first_image: str) -> None:
    outside = tmp_path / "elsewhere.jpg"
    outside.write_bytes((images_dir / first_image).read_bytes())
    (images_dir / "link.jpg").symlink_to(outside)
    with pytest.raises(E.UnsafePath, match="resolves outside"):
        _one_image(tmp_path, build, "link.jpg")


def test_image_missing(tmp_path: Path, build: Build) -> None:
    with pytest.raises(E.ImageMissing, match="does not exist"):
        _one_image(tmp_path, build, "nobody.jpg")


def test_image_with_another_suffix(tmp_path: Path, build: Build) -> None:
    with pytest.raises(E.NotAnImage, match="must be a JPEG or PNG"):
        _one_image(tmp_path, build, "face.gif", b"GIF89a")


def test_non_image_named_jpg(tmp_path: Path, build: Build) -> None:
    with pytest.raises(E.NotAnImage, match="is not an image"):
        _one_image(tmp_path, build, "notes.jpg", b"Suspect seen near the station\n")


def test_truncated_jpeg(tmp_path: Path, build: Build, images_dir: Path, first_image: str) -> None:
    data = (images_dir / first_image).read_bytes()
    with pytest.raises(E.TruncatedImage, match="truncated or corrupt"):
        _one_image(tmp_path, build, "cut.jpg", data[: len(data) // 2])


def test_decompression_bomb(tmp_path: Path, build: Build) -> None:
    with pytest.raises(E.ImageTooLarge, match="too many pixels"):
        _one_image(tmp_path, build, "bomb.png", png_bomb())


def test_image_file_larger_than_limit(build: Build, images_dir: Path, first_image: str) -> None:
    size = (images_dir / first_image).stat().st_size
    with pytest.raises(E.MemberTooLarge, match="max_image_mib"):
        build(limits=BundleLimits(max_member_bytes=size - 1))


def test_bundle_larger_than_limit(build: Build, images_dir: Path) -> None:
    total = sum(p.stat().st_size for p in images_dir.iterdir())
    with pytest.raises(E.BundleTooLarge, match="downscale"):
        build(limits=BundleLimits(max_bundle_bytes=total))


def test_more_entries_than_allowed(build: Build) -> None:
    with pytest.raises(E.ManifestInvalid, match="more than the 2 allowed"):
        build(limits=BundleLimits(max_entries=2))


@pytest.mark.parametrize("frm, until, error, fragment", [
    ("2026-11-22T20:00:00Z", "2026-11-22T06:00:00Z", E.WindowInvalid, "is not after"),
    ("2026-11-22T06:00:00Z", "2026-11-26T06:00:00Z", E.WindowInvalid, "longer than the 72 h"),
    ("2026-11-21T06:00:00Z", "2026-11-21T20:00:00Z", E.Expired, "already past"),
])
def test_bad_window(build: Build, frm: str, until: str, error: type, fragment: str) -> None:
    with pytest.raises(error, match=fragment):
        build(valid_from=parse_instant(frm, "f"), valid_until=parse_instant(until, "u"))


def test_window_needs_a_time_zone() -> None:
    with pytest.raises(E.WindowInvalid, match="has no time zone"):
        parse_instant("2026-11-22T06:00:00", "--valid-from")
    with pytest.raises(E.WindowInvalid, match="not an ISO 8601"):
        parse_instant("22/11/2026 06:00", "--valid-from")


def test_not_yet_valid_is_fine_at_build_time(build: Build, keys: Keys) -> None:
    """Lists are built the day before; only the van's clock decides when they become usable."""
    path = build(clock=FakeClock(parse_instant("2026-11-21T15:00:00Z", "n")))
    assert verify_bundle(path, keys.trusted, FakeClock(parse_instant(VALID_UNTIL, "u") - 60))


def test_refused_build_writes_nothing(tmp_path: Path, build: Build) -> None:
    out = tmp_path / "out" / "day.lfrw"
    with pytest.raises(E.EmptyWatchlist):
        build(entries_csv=_csv(tmp_path, []), out=out)
    assert not out.exists()
    assert not out.parent.exists() or not os.listdir(out.parent)


def test_existing_output_needs_force(build: Build) -> None:
    path = build()
    before = path.read_bytes()
    with pytest.raises(E.OutputExists, match="--force"):
        build(overwrite=False)
    assert path.read_bytes() == before


def test_same_inputs_same_bundle(build: Build, tmp_path: Path) -> None:
    """Deterministic output (fixed mtimes, owners, Ed25519): HQ can rebuild and compare a bundle's SHA-256."""
    a = build(out=tmp_path / "a.lfrw")
    b = build(out=tmp_path / "b.lfrw")
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


def test_a_truncated_photo_is_refused_even_when_pillow_is_told_to_accept_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: with the [compare] extra installed, importing face_recognition sets Pillow's process-wide
    LOAD_TRUNCATED_IMAGES, and truncated JPEGs and PNGs then passed the check."""
    from PIL import ImageFile

    from firmware.watchlist.errors import TruncatedImage
    from firmware.watchlist.images import check_image

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (64, 64, 3), np.uint8)
    for ext in (".jpg", ".png"):
        ok, encoded = cv2.imencode(ext, noise)
        data = encoded.tobytes()
        assert check_image(f"face{ext}", data, 10_000) == (64, 64)
        with pytest.raises(TruncatedImage, match="truncated"):
            check_image(f"face{ext}", data[: len(data) * 2 // 3], 10_000)
