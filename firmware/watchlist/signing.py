"""Ed25519 signing keys for watchlist bundles: make them, load them safely, and fingerprint them.

Headquarters keeps the private key (PKCS#8 PEM, mode 0600, refused when looser); each van trusts the public
keys (SubjectPublicKeyInfo PEM, `*.pub`) placed in its trusted-signers folder, e.g. /etc/lfr/trusted-signers.
A fingerprint is the SHA-256 of the 32 raw public-key bytes in hex: what an officer compares by eye.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from firmware.errors import KeyFileError

log = logging.getLogger(__name__)

PRIVATE_KEY_NAME = "lfr-signing.key"
PUBLIC_KEY_NAME = "lfr-signing.pub"
MAX_KEY_FILE_BYTES = 16 * 1024


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw 32-byte public key, 64 lowercase hex digits."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def short_fingerprint(fp: str) -> str:
    """The first 16 hex digits in groups of four (`ab12:cd34:...`), for screens and LEDs' logs."""
    return ":".join(fp[i:i + 4] for i in range(0, 16, 4))


@dataclass(frozen=True)
class TrustedKey:
    """A public key the appliance accepts bundles from, and the file it came from."""

    public_key: Ed25519PublicKey
    fingerprint: str
    source: Path


@dataclass(frozen=True)
class KeyPairPaths:
    private: Path
    public: Path
    fingerprint: str


def init_signing_keys(out_dir: Path | str) -> KeyPairPaths:
    """Make a new Ed25519 key pair in `out_dir` (created 0700 if absent); never overwrites an existing key."""
    out = Path(out_dir)
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    priv_path, pub_path = out / PRIVATE_KEY_NAME, out / PUBLIC_KEY_NAME
    for path in (priv_path, pub_path):
        if path.exists() or path.is_symlink():
            raise KeyFileError(f"{path} already exists; refusing to overwrite a signing key "
                               "(move it away first if you really mean to replace it)")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    _write_new(priv_path, pem, 0o600)
    _write_new(pub_path, pub, 0o644)
    fp = fingerprint(key.public_key())
    log.info("made signing key %s (fingerprint %s)", priv_path, fp)
    return KeyPairPaths(priv_path, pub_path, fp)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)  # the umask must not loosen or tighten what we asked for
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_key_file(path: Path) -> tuple[bytes, os.stat_result]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError as exc:
        raise KeyFileError(f"key file {path} does not exist") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot open key file {path} (a symlink, or no permission): {exc}") from exc
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"key file {path} is not a regular file")
        data = fh.read(MAX_KEY_FILE_BYTES + 1)
    if len(data) > MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"key file {path} is larger than {MAX_KEY_FILE_BYTES} bytes; not a key")
    return data, st


def load_private_key(path: Path | str) -> Ed25519PrivateKey:
    """The signing key at `path`; refused when group or others may read or write it (must be 0600 or 0400)."""
    path = Path(path)
    data, st = _read_key_file(path)
    if st.st_mode & 0o077:
        raise KeyFileError(f"signing key {path} has mode {stat.S_IMODE(st.st_mode):04o}; others can read it. "
                           f"Run: chmod 600 {path}")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} is not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}, not an Ed25519 signing key")
    return key


def load_public_key(path: Path | str) -> Ed25519PublicKey:
    """The Ed25519 public key in the PEM file at `path`."""
    path = Path(path)
    data, _ = _read_key_file(path)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} is not a PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}, not an Ed25519 public key")
    return key


def load_trusted_keys(directory: Path | str) -> dict[str, TrustedKey]:
    """Every `*.pub` in `directory`, by fingerprint. A malformed key file or one that group/others can write
    is refused outright (a trust anchor anyone could replace is no anchor); an empty directory too."""
    d = Path(directory)
    if not d.is_dir():
        raise KeyFileError(f"trusted signing keys directory {d} does not exist; place the headquarters' "
                           f"{PUBLIC_KEY_NAME} there")
    keys: dict[str, TrustedKey] = {}
    for path in sorted(d.glob("*.pub")):
        _, st = _read_key_file(path)
        if st.st_mode & 0o022:
            raise KeyFileError(f"trusted key {path} is writable by group or others "
                               f"(mode {stat.S_IMODE(st.st_mode):04o}); run: chmod 644 {path}")
        pub = load_public_key(path)
        fp = fingerprint(pub)
        keys[fp] = TrustedKey(pub, fp, path)
    if not keys:
        raise KeyFileError(f"no trusted signing keys (*.pub) in {d}")
    return keys


def trusted_from_public_keys(*public_keys: Ed25519PublicKey) -> dict[str, TrustedKey]:
    """A trust set from keys in memory (build-time self-check, tests)."""
    return {fingerprint(k): TrustedKey(k, fingerprint(k), Path("<memory>")) for k in public_keys}


def sign(private_key: Ed25519PrivateKey, message: bytes) -> bytes:
    """The 64-byte Ed25519 signature of `message`."""
    return private_key.sign(message)


def is_valid_signature(public_key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    """True when `signature` is `public_key`'s signature of exactly `message`."""
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True
