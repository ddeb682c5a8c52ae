"""Property-based tests of the bundle reader (issue 13): on arbitrary bytes, and on mutations of a valid
bundle, verification either refuses with a `BundleRefused` code or returns exactly what was signed. Nothing
else may come out: no other exception, no traceback, no half-accepted content."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from bundle_helpers import NOW, VALID_FROM, VALID_UNTIL, lfw_faces, write_csv
from hypothesis import given
from hypothesis import strategies as st

from firmware.hardware.clock import FakeClock
from firmware.watchlist.archive import read_archive
from firmware.watchlist.bundle import build_bundle
from firmware.watchlist.errors import BundleRefused
from firmware.watchlist.limits import BundleLimits
from firmware.watchlist.manifest import parse_instant
from firmware.watchlist.signing import init_signing_keys, load_private_key, trusted_from_public_keys
from firmware.watchlist.verify import VerifiedBundle, open_bundle_bytes, verify_bundle

pytestmark = pytest.mark.properties
LIMITS = BundleLimits(max_entries=8, max_member_bytes=256 * 1024)


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory, lfw_dir: Path) -> tuple[bytes, dict, VerifiedBundle]:
    """A valid two-person bundle (real LFW faces), the trusted keys and its verified content."""
    root = tmp_path_factory.mktemp("props")
    images = root / "images"
    images.mkdir()
    rows = []
    for i, src in enumerate(lfw_faces(lfw_dir, 2)):
        shutil.copy(src, images / src.name)
        rows.append(f"P-{i},Person {i},wanted,reason {i},{src.name}")
    pair = init_signing_keys(root / "hq")
    key = load_private_key(pair.private)
    path = build_bundle(images_dir=images, entries_csv=write_csv(root / "e.csv", "id,name,category,reason,image",
                                                                 rows),
                        deployment_ref="OP-P", valid_from=parse_instant(VALID_FROM, "f"),
                        valid_until=parse_instant(VALID_UNTIL, "u"), private_key=key, out=root / "b.lfrw",
                        created_by="hq", clock=FakeClock(NOW), limits=LIMITS).path
    data = path.read_bytes()
    trusted = trusted_from_public_keys(key.public_key())
    return data, trusted, open_bundle_bytes(data, trusted, LIMITS)


def _verdict(data: bytes, trusted: dict) -> VerifiedBundle | str:
    """The verified bundle, or the refusal code; any other exception fails the test, and so does the
    catch-all `check_failed` (it would mean a check met an exception nobody foresaw)."""
    try:
        return verify_bundle(io.BytesIO(data), trusted, FakeClock(NOW), LIMITS)
    except BundleRefused as exc:
        assert exc.code != "check_failed", repr(exc.__cause__)
        return exc.code


@given(st.binary(max_size=4096))
def test_arbitrary_bytes_are_refused_with_a_code(signed: tuple, data: bytes) -> None:
    verdict = _verdict(data, signed[1])
    assert isinstance(verdict, str)


@given(st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 255)), min_size=1, max_size=8))
def test_flipped_bytes_never_change_what_verifies(signed: tuple, flips: list[tuple[int, int]]) -> None:
    data, trusted, good = signed
    mutated = bytearray(data)
    for where, value in flips:
        mutated[where % len(mutated)] = value
    verdict = _verdict(bytes(mutated), trusted)
    if not isinstance(verdict, str):  # padding, mtime or mode bytes: the signed content is unchanged
        assert verdict.manifest == good.manifest and dict(verdict.images) == dict(good.images)


@given(st.integers(0, 10**9), st.integers(0, 10**9), st.binary(max_size=600))
def test_cut_spliced_or_inserted_bytes_never_change_what_verifies(signed: tuple, a: int, b: int,
                                                                  insert: bytes) -> None:
    data, trusted, good = signed
    i, j = sorted((a % (len(data) + 1), b % (len(data) + 1)))
    for mutated in (data[:i], data[:i] + insert + data[j:], data[:i] + data[j:] + data[i:j]):
        verdict = _verdict(mutated, trusted)
        if not isinstance(verdict, str):
            assert verdict.manifest == good.manifest and dict(verdict.images) == dict(good.images)


@given(st.lists(st.binary(min_size=512, max_size=512), max_size=6))
def test_arbitrary_headers_only_raise_refusals(blocks: list[bytes]) -> None:
    try:
        read_archive(b"".join(blocks) + bytes(1024), LIMITS)
    except BundleRefused:
        pass
