"""Open a bundle from a file or a mounted USB stick and verify all of it before anything else looks at it.

Order: read the whole file (bounded) into memory, check the archive's structure, the signature over the
manifest, the manifest's content, each image's SHA-256 and content, then the validity window. Any failure
raises one BundleRefused subclass; nothing is written anywhere, so a refused bundle changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import json
import logging
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import BinaryIO

from firmware.errors import LfrError
from firmware.hardware.clock import Clock
from firmware.watchlist.archive import MANIFEST_NAME, SIGNATURE_NAME, read_archive
from firmware.watchlist.errors import (
    BundleCheckFailed,
    BundleNotFound,
    BundleReadError,
    BundleTooLarge,
    CreatedInFuture,
    Expired,
    ExtraFile,
    ImageHashMismatch,
    ImageMissing,
    ManifestInvalid,
    ManifestTampered,
    NotYetValid,
    SeveralBundles,
    SignatureMalformed,
    SignatureMissing,
    UntrustedSigner,
)
from firmware.watchlist.images import check_image
from firmware.watchlist.limits import BundleLimits
from firmware.watchlist.manifest import BASE_CATEGORIES, Manifest, format_instant, parse_manifest
from firmware.watchlist.signing import TrustedKey, is_valid_signature

log = logging.getLogger(__name__)

BUNDLE_SUFFIX = ".lfrw"
SIGNATURE_ALGORITHM = "ed25519"
# Signed message = context + manifest bytes, so a signature made for anything else with the same key
# can never pass as a bundle signature.
SIGNATURE_CONTEXT = b"lfr-watchlist-bundle-v1\x00"
_READ_CHUNK = 1024 * 1024
MAX_SIGNATURE_BYTES = 1024
"""manifest.sig is about 200 bytes; it is read before anything is trusted, so its size is bounded first."""
MAX_SIGNATURE_DEPTH = 1
"""manifest.sig is one flat JSON object; deeper nesting is refused before the JSON parser sees it."""
CLOCK_SKEW_S = 300.0
"""A bundle's created_at may lie this far ahead of the appliance clock (clocks of HQ and van differ)."""


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle whose every check passed: the manifest, its images (member name -> bytes, in memory),
    the SHA-256 of the whole file and the fingerprint of the trusted key that signed it."""

    manifest: Manifest
    images: Mapping[str, bytes]
    sha256: str
    size_bytes: int
    signer_fingerprint: str

    def summary(self) -> dict[str, object]:
        return {**self.manifest.summary(), "bundle_sha256": self.sha256, "size_bytes": self.size_bytes,
                "signer_fingerprint": self.signer_fingerprint}


def signed_message(manifest_bytes: bytes) -> bytes:
    return SIGNATURE_CONTEXT + manifest_bytes


def encode_signature(fingerprint: str, signature: bytes) -> bytes:
    """The detached `manifest.sig` member: which key signed (a hint to pick the key) and the signature."""
    doc = {"algorithm": SIGNATURE_ALGORITHM, "key_fingerprint": fingerprint,
           "signature": base64.b64encode(signature).decode("ascii")}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("ascii")


def locate_bundle(path: Path | str) -> Path:
    """The bundle file itself, or the single `*.lfrw` at the top of a mounted stick's folder. Hidden files
    (`.name`, e.g. macOS `._x.lfrw` resource forks) are ignored; two bundles are refused, not guessed at."""
    p = Path(path)
    if p.is_symlink():
        raise BundleNotFound(f"{p} is a symbolic link; give the bundle file itself")
    if p.is_dir():
        try:
            found = sorted(c for c in p.iterdir()
                           if c.name.lower().endswith(BUNDLE_SUFFIX) and not c.name.startswith("."))
        except OSError as exc:
            raise BundleReadError(f"cannot list {p} (was the stick removed?): {exc}") from exc
        if not found:
            raise BundleNotFound(f"no {BUNDLE_SUFFIX} bundle at the top of {p}")
        if len(found) > 1:
            raise SeveralBundles(f"{p} holds {len(found)} bundles ({', '.join(c.name for c in found)}); "
                                 "a stick must carry exactly one so there is no doubt which list is loaded")
        p = found[0]
        if p.is_symlink():
            raise BundleNotFound(f"{p} is a symbolic link; the bundle must be a regular file on the stick")
    if not p.exists():
        raise BundleNotFound(f"bundle {p} does not exist")
    return p


def read_bounded(fh: BinaryIO, limit: int, name: str) -> bytes:
    """All of `fh`, refusing more than `limit` bytes; an I/O error (a pulled stick gives EIO or ENODEV)
    becomes BundleReadError."""
    chunks: list[bytes] = []
    total = 0
    try:
        while chunk := fh.read(_READ_CHUNK):
            total += len(chunk)
            if total > limit:
                raise BundleTooLarge(f"{name} is larger than the {limit} bytes allowed "
                                     "(watchlist.max_bundle_mib)")
            chunks.append(chunk)
    except OSError as exc:
        hint = " (was the USB stick removed?)" if exc.errno in (errno.EIO, errno.ENODEV, errno.ENXIO) else ""
        raise BundleReadError(f"reading {name} failed{hint}: {exc}; nothing was changed") from exc
    return b"".join(chunks)


def read_source(source: Path | str | BinaryIO, limits: BundleLimits) -> tuple[bytes, str]:
    """The bytes of the bundle named by `source` (a file, a stick folder, or an open binary file) and a name
    for messages."""
    if isinstance(source, (str, Path)):
        path = locate_bundle(source)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # no hang on a fifo
        except OSError as exc:
            raise BundleReadError(f"cannot open {path}: {exc}") from exc
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise BundleNotFound(f"{path} is not a regular file")
            if st.st_size > limits.max_bundle_bytes:
                raise BundleTooLarge(f"{path} is {st.st_size} bytes, more than the {limits.max_bundle_bytes} "
                                     "allowed (watchlist.max_bundle_mib)")
            return read_bounded(fh, limits.max_bundle_bytes, str(path)), str(path)
    name = str(getattr(source, "name", "<bundle>"))
    return read_bounded(source, limits.max_bundle_bytes, name), name


def json_depth(data: bytes) -> int:
    """How deeply the JSON text in `data` nests arrays and objects, found in one pass without parsing
    (brackets inside strings do not count), so a hostile file cannot drive a recursive parser deep."""
    depth = deepest = 0
    in_string = escaped = False
    for c in data:
        if in_string:
            if escaped:
                escaped = False
            elif c == 0x5C:  # backslash
                escaped = True
            elif c == 0x22:  # quote
                in_string = False
        elif c == 0x22:
            in_string = True
        elif c in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif c in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def parse_signature(sig_bytes: bytes) -> tuple[str, str, bytes]:
    """(algorithm, key fingerprint, raw signature) from `manifest.sig`, refusing anything but one small flat
    JSON object of three strings (bounded in size and depth before it is parsed)."""
    if len(sig_bytes) > MAX_SIGNATURE_BYTES:
        raise SignatureMalformed(f"{SIGNATURE_NAME} is {len(sig_bytes)} bytes, more than the "
                                 f"{MAX_SIGNATURE_BYTES} a signature takes")
    if json_depth(sig_bytes) > MAX_SIGNATURE_DEPTH:
        raise SignatureMalformed(f"{SIGNATURE_NAME} nests JSON deeper than one flat object")
    try:
        doc = json.loads(sig_bytes.decode("ascii"))
        if not isinstance(doc, dict) or set(doc) != {"algorithm", "key_fingerprint", "signature"}:
            raise ValueError("unexpected fields")
        if not all(isinstance(v, str) for v in doc.values()):
            raise ValueError("a field is not text")
        signature = base64.b64decode(doc["signature"], validate=True)
    except (UnicodeDecodeError, ValueError, binascii.Error, RecursionError) as exc:
        raise SignatureMalformed(f"{SIGNATURE_NAME} is not a readable signature: {exc}") from exc
    return doc["algorithm"], doc["key_fingerprint"], signature


def _check_signature(manifest_bytes: bytes, sig_bytes: bytes,
                     trusted: Mapping[str, TrustedKey]) -> TrustedKey:
    algorithm, fp, signature = parse_signature(sig_bytes)
    if algorithm != SIGNATURE_ALGORITHM:
        raise SignatureMalformed(f"signature algorithm {algorithm!r} is not {SIGNATURE_ALGORITHM}")
    key = trusted.get(fp)
    if key is None:
        raise UntrustedSigner(f"the bundle is signed by key {fp[:16]!r}…, which this appliance does not trust "
                              f"({len(trusted)} trusted key(s)); add its .pub to the trusted signers only if "
                              "headquarters confirms the fingerprint")
    if not is_valid_signature(key.public_key, signature, signed_message(manifest_bytes)):
        raise ManifestTampered("the signature does not match the manifest: it was edited after signing "
                               "(or the signature is damaged)")
    return key


def open_bundle_bytes(data: bytes, trusted: Mapping[str, TrustedKey], limits: BundleLimits,
                      categories: Sequence[str] = BASE_CATEGORIES) -> VerifiedBundle:
    """Every check except the validity window (see `check_window_now`), on bundle bytes in memory."""
    members = read_archive(data, limits)
    sig_bytes = members.pop(SIGNATURE_NAME, None)
    manifest_bytes = members.pop(MANIFEST_NAME, None)
    if manifest_bytes is None:
        raise ManifestInvalid(f"the bundle has no {MANIFEST_NAME}")
    if sig_bytes is None:
        raise SignatureMissing(f"the bundle has no signature ({SIGNATURE_NAME}); unsigned lists are refused")
    signer = _check_signature(manifest_bytes, sig_bytes, trusted)
    manifest = parse_manifest(manifest_bytes, categories, limits)
    images: dict[str, bytes] = {}
    for e in manifest.entries:
        for p in e.photos:
            content = members.pop(p.image, None)
            if content is None:
                raise ImageMissing(f"entry {e.id!r}: its image {p.image} is missing from the bundle")
            if hashlib.sha256(content).hexdigest() != p.sha256:
                raise ImageHashMismatch(f"entry {e.id!r}: image {p.image} does not match its signed SHA-256; "
                                        "it was edited or swapped after signing")
            images[p.image] = content
    if members:
        raise ExtraFile(f"the bundle holds files its manifest does not list: {', '.join(map(repr, sorted(members)))}")
    for e in manifest.entries:
        for p in e.photos:
            check_image(f"entry {e.id!r} image {p.image}", images[p.image], limits.max_image_pixels)
    return VerifiedBundle(manifest=manifest, images=MappingProxyType(images),
                          sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data),
                          signer_fingerprint=signer.fingerprint)


def check_window_now(manifest: Manifest, clock: Clock) -> None:
    """Refuse a bundle outside its window (now < valid_from, or now >= valid_until) or created in the future
    beyond CLOCK_SKEW_S (a list dated ahead would outrank, and so lock out, every list built after it)."""
    now = clock.time()
    if now < manifest.valid_from:
        raise NotYetValid(f"the bundle is valid from {format_instant(manifest.valid_from)}; it is now "
                          f"{format_instant(now)} (check the appliance clock if this is wrong)")
    if now >= manifest.valid_until:
        raise Expired(f"the bundle expired at {format_instant(manifest.valid_until)}; it is now "
                      f"{format_instant(now)}")
    if manifest.created_at > now + CLOCK_SKEW_S:
        raise CreatedInFuture(f"the bundle was created at {format_instant(manifest.created_at)}, later than "
                              f"the appliance clock ({format_instant(now)}) by more than {CLOCK_SKEW_S:g} s; "
                              "check the clocks of the appliance and of the build machine")


def verify_bundle(source: Path | str | BinaryIO, trusted: Mapping[str, TrustedKey], clock: Clock,
                  limits: BundleLimits | None = None,
                  categories: Sequence[str] = BASE_CATEGORIES) -> VerifiedBundle:
    """Read and fully verify the bundle at `source` (file, stick folder or open binary file) now."""
    limits = limits or BundleLimits()
    try:
        data, name = read_source(source, limits)
        bundle = open_bundle_bytes(data, trusted, limits, categories)
        check_window_now(bundle.manifest, clock)
    except LfrError:
        raise
    except Exception as exc:  # whatever a check did not foresee: refused with a code, never trusted
        log.exception("checking the bundle failed unexpectedly")
        raise BundleCheckFailed(f"the bundle could not be checked ({type(exc).__name__}: {exc}); it was "
                                "refused; the appliance's journal has the details") from exc
    log.info("verified bundle %s: %d entries, deployment %s, signer %s, sha256 %s", name,
             len(bundle.manifest.entries), bundle.manifest.deployment_ref, bundle.signer_fingerprint[:16],
             bundle.sha256)
    return bundle
