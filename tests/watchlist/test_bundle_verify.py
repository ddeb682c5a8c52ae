"""Import-side verification: a good bundle passes; each bad bundle is refused with its own error class,
code and message, before any image reaches the enroller."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from bundle_helpers import (
    PEOPLE,
    VALID_FROM,
    VALID_UNTIL,
    Build,
    Keys,
    PulledStick,
    image_names,
    members_of,
    png_bomb,
    resign,
    tar_with_extra,
    write_members,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware.hardware.clock import FakeClock
from firmware.watchlist import errors as E
from firmware.watchlist.archive import MANIFEST_NAME, SIGNATURE_NAME
from firmware.watchlist.limits import BundleLimits
from firmware.watchlist.manifest import parse_instant
from firmware.watchlist.signing import trusted_from_public_keys
from firmware.watchlist.verify import verify_bundle


def test_good_bundle_verifies(good_bundle: Path, keys: Keys, clock: FakeClock) -> None:
    b = verify_bundle(good_bundle, keys.trusted, clock)
    assert len(b.manifest.entries) == PEOPLE
    assert b.sha256 == hashlib.sha256(good_bundle.read_bytes()).hexdigest()
    assert b.signer_fingerprint == next(iter(keys.trusted))
    assert b.manifest.deployment_ref == "OP-2026-117"
    for e in b.manifest.entries:
        assert hashlib.sha256(b.images[e.image]).hexdigest() == e.sha256


def test_stick_folder_with_one_bundle(good_bundle: Path, keys: Keys, clock: FakeClock) -> None:
    """A mounted stick: the one .lfrw at its top is found; a macOS `._` resource fork beside it is ignored."""
    (good_bundle.parent / "._day.lfrw").write_bytes(b"\x00\x05\x16\x07 resource fork")
    assert verify_bundle(good_bundle.parent, keys.trusted, clock).manifest.deployment_ref == "OP-2026-117"


# Each case turns the good bundle's members (and the HQ key) into a bad bundle file at `out`.
Case = Callable[[dict[str, bytes], Ed25519PrivateKey, Path], Path]


def _set(name_index: int, value: bytes) -> Case:
    def case(m: dict[str, bytes], key: Ed25519PrivateKey, out: Path) -> Path:
        m[image_names(m)[name_index]] = value
        return write_members(out, m)
    return case


def _resigned(edit: Callable[[dict[str, Any]], None], image: bytes | None = None) -> Case:
    """Manifest edited and signed again by the trusted key; optionally image 0 replaced (hash updated)."""
    def case(m: dict[str, bytes], key: Ed25519PrivateKey, out: Path) -> Path:
        def full_edit(doc: dict[str, Any]) -> None:
            edit(doc)
            if image is not None:
                doc["entries"][0]["sha256"] = hashlib.sha256(image).hexdigest()
        if image is not None:
            m[image_names(m)[0]] = image
        resign(m, key, full_edit)
        return write_members(out, m)
    return case


def _crafted(info: tarfile.TarInfo, data: bytes | None = None) -> Case:
    def case(m: dict[str, bytes], key: Ed25519PrivateKey, out: Path) -> Path:
        out.write_bytes(tar_with_extra(m, info, data))
        return out
    return case


def _tar_info(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def _drop(name: str | int) -> Case:
    def case(m: dict[str, bytes], key: Ed25519PrivateKey, out: Path) -> Path:
        del m[name if isinstance(name, str) else image_names(m)[name]]
        return write_members(out, m)
    return case


def _garble_signature(m: dict[str, bytes], key: Ed25519PrivateKey, out: Path) -> Path:
    m[SIGNATURE_NAME] = b"\xff{not json"
    return write_members(out, m)


def _edit_manifest_unsigned(m: dict[str, bytes], key: Ed25519PrivateKey, out: Path) -> Path:
    m[MANIFEST_NAME] = m[MANIFEST_NAME].replace(VALID_UNTIL.encode(), b"2026-11-23T20:00:00Z")
    return write_members(out, m)


def _signed_by_stranger(m: dict[str, bytes], key: Ed25519PrivateKey, out: Path) -> Path:
    resign(m, Ed25519PrivateKey.generate(), lambda doc: None)
    return write_members(out, m)


def _swap_images(m: dict[str, bytes], key: Ed25519PrivateKey, out: Path) -> Path:
    a, b = image_names(m)[:2]
    m[a], m[b] = m[b], m[a]
    return write_members(out, m)


def _flip_byte(m: dict[str, bytes], key: Ed25519PrivateKey, out: Path) -> Path:
    name = image_names(m)[0]
    data = bytearray(m[name])
    data[len(data) // 2] ^= 0x01
    m[name] = bytes(data)
    return write_members(out, m)


def _add_file(name: str) -> Case:
    def case(m: dict[str, bytes], key: Ed25519PrivateKey, out: Path) -> Path:
        m[name] = b"left over"
        return write_members(out, m)
    return case


def _truncated_jpeg(m: dict[str, bytes], key: Ed25519PrivateKey, out: Path) -> Path:
    jpeg = m[image_names(m)[0]]
    return _resigned(lambda doc: None, jpeg[: len(jpeg) // 2])(m, key, out)


def _bomb(m: dict[str, bytes], key: Ed25519PrivateKey, out: Path) -> Path:
    """Entry 0's photo replaced by a 30000x30000 PNG, hash and name updated, signed by the trusted key."""
    bomb = png_bomb()
    del m[image_names(m)[0]]
    m["images/bomb.png"] = bomb
    resign(m, key, lambda d: d["entries"][0].update(image="images/bomb.png",
                                                     sha256=hashlib.sha256(bomb).hexdigest()))
    return write_members(out, m)


def _duplicate_member(m: dict[str, bytes], key: Ed25519PrivateKey, out: Path) -> Path:
    name = image_names(m)[0]
    return write_members(out, [*m.items(), (name, m[name])])


def _cut_in_half(m: dict[str, bytes], key: Ed25519PrivateKey, out: Path) -> Path:
    data = write_members(out, m).read_bytes()
    out.write_bytes(data[: len(data) // 2])
    return out


def _hidden_after_end(m: dict[str, bytes], key: Ed25519PrivateKey, out: Path) -> Path:
    data = write_members(out, m).read_bytes()
    out.write_bytes(data + b"hidden payload" + bytes(1024))
    return out


def _drop_key(key_name: str) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        del doc["entries"][1][key_name]
    return edit


BAD: dict[str, tuple[Case, type[E.BundleRefused], str]] = {
    "untrusted signer": (_signed_by_stranger, E.UntrustedSigner, "does not trust"),
    "signature missing": (_drop(SIGNATURE_NAME), E.SignatureMissing, "no signature"),
    "signature garbled": (_garble_signature, E.SignatureMalformed, "not a readable signature"),
    "manifest edited after signing": (_edit_manifest_unsigned, E.ManifestTampered, "edited after signing"),
    "image edited": (_flip_byte, E.ImageHashMismatch, "edited or swapped"),
    "images swapped": (_swap_images, E.ImageHashMismatch, "edited or swapped"),
    "image missing": (_drop(0), E.ImageMissing, "is missing from the bundle"),
    "extra file": (_add_file("notes.txt"), E.ExtraFile, "notes.txt"),
    "extra image": (_add_file("images/9999.jpg"), E.ExtraFile, "images/9999.jpg"),
    "duplicate ids": (_resigned(lambda d: d["entries"][1].update(id=d["entries"][0]["id"])), E.DuplicateId,
                      "appears twice"),
    "entry missing a field": (_resigned(_drop_key("reason")), E.ManifestInvalid, "missing reason"),
    "entry with an extra field": (_resigned(lambda d: d["entries"][0].update(notes="x")), E.ManifestInvalid,
                                  "unexpected notes"),
    "empty list": (_resigned(lambda d: d.update(entries=[])), E.EmptyWatchlist, "no entries"),
    "unknown category": (_resigned(lambda d: d["entries"][0].update(category="suspicious")),
                         E.UnknownCategory, "'suspicious' is not one of"),
    "window longer than policy": (_resigned(lambda d: d.update(valid_until="2026-12-30T00:00:00Z")),
                                  E.WindowInvalid, "longer than"),
    "future format version": (_resigned(lambda d: d.update(format_version=3)), E.ManifestInvalid,
                              "version 3 is not supported"),
    "non-image named .jpg": (_resigned(lambda d: None, b"these are not the pixels you are looking for\n" * 9),
                             E.NotAnImage, "is not an image"),
    "truncated JPEG": (_truncated_jpeg, E.TruncatedImage, "truncated or corrupt"),
    "decompression bomb": (_bomb, E.ImageTooLarge, "too many pixels"),
    "path escaping the bundle": (_crafted(_tar_info("../evil.jpg"), b"x"), E.UnsafePath,
                                 "escapes the bundle"),
    "path escaping via a folder": (_crafted(_tar_info("images/../../evil.jpg"), b"x"), E.UnsafePath,
                                   "escapes the bundle"),
    "absolute path": (_crafted(_tar_info("/etc/cron.d/evil"), b"x"), E.AbsolutePath, "absolute path"),
    "symlink": (_crafted(_tar_info("images/link.jpg", tarfile.SYMTYPE, "/etc/shadow")), E.LinkMember,
                "symbolic link"),
    "hardlink": (_crafted(_tar_info("images/hard.jpg", tarfile.LNKTYPE, "manifest.json")), E.LinkMember,
                 "hard link"),
    "device": (_crafted(_tar_info("images/sda.jpg", tarfile.BLKTYPE)), E.SpecialMember, "a device"),
    "character device": (_crafted(_tar_info("zero", tarfile.CHRTYPE)), E.SpecialMember, "a device"),
    "fifo": (_crafted(_tar_info("images/pipe.jpg", tarfile.FIFOTYPE)), E.SpecialMember, "a fifo"),
    "directory": (_crafted(_tar_info("images", tarfile.DIRTYPE)), E.SpecialMember, "a directory"),
    "duplicate member": (_duplicate_member, E.DuplicateMember, "appears twice"),
    "truncated bundle": (_cut_in_half, E.ArchiveCorrupt, "truncated"),
    "data hidden after the end": (_hidden_after_end, E.ArchiveCorrupt, "hidden after"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_bundle_is_refused(name: str, good_bundle: Path, keys: Keys, clock: FakeClock,
                               tmp_path: Path) -> None:
    make, error, fragment = BAD[name]
    bad = make(members_of(good_bundle), keys.private, tmp_path / "bad.lfrw")
    with pytest.raises(error, match=fragment) as info:
        verify_bundle(bad, keys.trusted, clock)
    assert type(info.value) is error, f"{name}: refused as {type(info.value).__name__}, not {error.__name__}"


def test_each_refusal_has_its_own_code() -> None:
    classes = [c for c in vars(E).values() if isinstance(c, type) and issubclass(c, E.BundleRefused)]
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes)) > 25


@pytest.mark.parametrize("now, error, fragment", [
    (parse_instant(VALID_UNTIL, "u"), E.Expired, "expired at 2026-11-22T20:00:00Z"),
    (parse_instant("2026-11-25T00:00:00Z", "n"), E.Expired, "expired"),
    (parse_instant(VALID_FROM, "f") - 1, E.NotYetValid, "valid from 2026-11-22T06:00:00Z"),
])
def test_window_is_checked_against_the_clock(good_bundle: Path, keys: Keys, now: float, error: type,
                                             fragment: str) -> None:
    with pytest.raises(error, match=fragment):
        verify_bundle(good_bundle, keys.trusted, FakeClock(now))


def test_window_edges_are_inclusive_from_exclusive_until(build: Build, keys: Keys) -> None:
    """Built the evening before (a bundle cannot be verified before it was created: see created_in_future)."""
    bundle = build(clock=FakeClock(parse_instant(VALID_FROM, "f") - 10 * 3600))
    verify_bundle(bundle, keys.trusted, FakeClock(parse_instant(VALID_FROM, "f")))
    verify_bundle(bundle, keys.trusted, FakeClock(parse_instant(VALID_UNTIL, "u") - 1))


def test_member_larger_than_limit(good_bundle: Path, keys: Keys, clock: FakeClock) -> None:
    biggest = max(len(v) for v in members_of(good_bundle).values())
    with pytest.raises(E.MemberTooLarge, match="more than the"):
        verify_bundle(good_bundle, keys.trusted, clock, BundleLimits(max_member_bytes=biggest - 1))


def test_bundle_larger_than_limit(good_bundle: Path, keys: Keys, clock: FakeClock) -> None:
    size = good_bundle.stat().st_size
    with pytest.raises(E.BundleTooLarge, match="max_bundle_mib"):
        verify_bundle(good_bundle, keys.trusted, clock, BundleLimits(max_bundle_bytes=size - 1))


def test_bundle_larger_than_limit_from_a_stream(good_bundle: Path, keys: Keys, clock: FakeClock) -> None:
    """A stream has no size to check first: reading stops at the limit instead of filling memory."""
    data = good_bundle.read_bytes()
    with pytest.raises(E.BundleTooLarge):
        verify_bundle(io.BytesIO(data), keys.trusted, clock, BundleLimits(max_bundle_bytes=len(data) - 1))


def test_image_pixels_over_limit(good_bundle: Path, keys: Keys, clock: FakeClock) -> None:
    """LFW images are 250x250; a limit below that is refused from the header, before decoding."""
    with pytest.raises(E.ImageTooLarge, match="declares 250x250 pixels"):
        verify_bundle(good_bundle, keys.trusted, clock, BundleLimits(max_image_pixels=250 * 250 - 1))


def test_more_entries_than_allowed(good_bundle: Path, keys: Keys, clock: FakeClock) -> None:
    with pytest.raises(E.ArchiveCorrupt, match="more than 4 members"):
        verify_bundle(good_bundle, keys.trusted, clock, BundleLimits(max_entries=2))


def test_second_bundle_on_the_stick(good_bundle: Path, keys: Keys, clock: FakeClock) -> None:
    (good_bundle.parent / "other.lfrw").write_bytes(good_bundle.read_bytes())
    with pytest.raises(E.SeveralBundles, match="holds 2 bundles"):
        verify_bundle(good_bundle.parent, keys.trusted, clock)


def test_stick_without_a_bundle(tmp_path: Path, keys: Keys, clock: FakeClock) -> None:
    (tmp_path / "stick").mkdir()
    with pytest.raises(E.BundleNotFound, match="no .lfrw bundle"):
        verify_bundle(tmp_path / "stick", keys.trusted, clock)


def test_symlinked_bundle_on_the_stick(good_bundle: Path, tmp_path: Path, keys: Keys,
                                       clock: FakeClock) -> None:
    stick = tmp_path / "stick"
    stick.mkdir()
    (stick / "day.lfrw").symlink_to(good_bundle)
    with pytest.raises(E.BundleNotFound, match="symbolic link"):
        verify_bundle(stick, keys.trusted, clock)


def test_stick_removed_mid_read(good_bundle: Path, keys: Keys, clock: FakeClock) -> None:
    data = good_bundle.read_bytes()
    with pytest.raises(E.BundleReadError, match=r"was the USB stick removed\?.*nothing was changed"):
        verify_bundle(io.BufferedReader(PulledStick(data, len(data) // 2)), keys.trusted, clock)


def test_trust_is_by_key_not_by_claimed_fingerprint(good_bundle: Path, keys: Keys, clock: FakeClock,
                                                    tmp_path: Path) -> None:
    """A stranger who copies the trusted key's fingerprint into its signature file is still refused."""
    m = members_of(good_bundle)
    stranger = Ed25519PrivateKey.generate()
    resign(m, stranger, lambda doc: doc.update(deployment_ref="FORGED"))
    stranger_fp = next(iter(trusted_from_public_keys(stranger.public_key())))
    m[SIGNATURE_NAME] = m[SIGNATURE_NAME].replace(stranger_fp.encode(), next(iter(keys.trusted)).encode())
    with pytest.raises(E.ManifestTampered):
        verify_bundle(write_members(tmp_path / "forged.lfrw", m), keys.trusted, clock)



def test_fifo_named_like_a_bundle_does_not_hang(tmp_path: Path, keys: Keys, clock: FakeClock) -> None:
    """Regression: opening a fifo for reading blocks until a writer appears; the import must not hang."""
    stick = tmp_path / "stick"
    stick.mkdir()
    os.mkfifo(stick / "day.lfrw")
    with pytest.raises(E.BundleNotFound, match="not a regular file"):
        verify_bundle(stick, keys.trusted, clock)
