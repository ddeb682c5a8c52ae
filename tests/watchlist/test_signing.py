"""Signing keys: made with safe modes, refused when loose, and trust anchors refused when replaceable."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware.errors import KeyFileError
from firmware.watchlist.signing import (
    fingerprint,
    init_signing_keys,
    is_valid_signature,
    load_private_key,
    load_public_key,
    load_trusted_keys,
    short_fingerprint,
    sign,
)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_init_makes_a_usable_pair_with_safe_modes(tmp_path: Path) -> None:
    pair = init_signing_keys(tmp_path / "keys")
    assert _mode(pair.private) == 0o600 and _mode(pair.public) == 0o644 and _mode(tmp_path / "keys") == 0o700
    key, pub = load_private_key(pair.private), load_public_key(pair.public)
    assert fingerprint(pub) == fingerprint(key.public_key()) == pair.fingerprint
    assert len(pair.fingerprint) == 64 and short_fingerprint(pair.fingerprint).count(":") == 3
    sig = sign(key, b"manifest")
    assert is_valid_signature(pub, sig, b"manifest") and not is_valid_signature(pub, sig, b"manifest!")


def test_init_under_a_permissive_umask_still_writes_0600(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        pair = init_signing_keys(tmp_path)
    finally:
        os.umask(old)
    assert _mode(pair.private) == 0o600


def test_init_never_overwrites(tmp_path: Path) -> None:
    pair = init_signing_keys(tmp_path)
    before = pair.private.read_bytes()
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        init_signing_keys(tmp_path)
    assert pair.private.read_bytes() == before


@pytest.mark.parametrize("mode", [0o640, 0o644, 0o604, 0o660])
def test_loose_private_key_is_refused(tmp_path: Path, mode: int) -> None:
    pair = init_signing_keys(tmp_path)
    pair.private.chmod(mode)
    with pytest.raises(KeyFileError, match=f"mode {mode:04o}.*chmod 600"):
        load_private_key(pair.private)


def test_read_only_private_key_is_fine(tmp_path: Path) -> None:
    pair = init_signing_keys(tmp_path)
    pair.private.chmod(0o400)
    assert load_private_key(pair.private)


def test_symlinked_private_key_is_refused(tmp_path: Path) -> None:
    pair = init_signing_keys(tmp_path / "real")
    (tmp_path / "link.key").symlink_to(pair.private)
    with pytest.raises(KeyFileError, match="symlink"):
        load_private_key(tmp_path / "link.key")


def test_public_key_is_not_a_private_key(tmp_path: Path) -> None:
    pair = init_signing_keys(tmp_path)
    shutil.copy(pair.public, tmp_path / "wrong.key")
    (tmp_path / "wrong.key").chmod(0o600)
    with pytest.raises(KeyFileError, match="not an unencrypted PEM private key"):
        load_private_key(tmp_path / "wrong.key")


def test_missing_key(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        load_private_key(tmp_path / "nope.key")


def _trusted_dir(tmp_path: Path, n: int) -> tuple[Path, list[str]]:
    d = tmp_path / "trusted"
    d.mkdir()
    fps = []
    for i in range(n):
        pair = init_signing_keys(tmp_path / f"hq{i}")
        shutil.copy(pair.public, d / f"hq{i}.pub")
        (d / f"hq{i}.pub").chmod(0o644)
        fps.append(pair.fingerprint)
    return d, fps


def test_trusted_keys_by_fingerprint(tmp_path: Path) -> None:
    d, fps = _trusted_dir(tmp_path, 2)
    (d / "README").write_text("not a key, ignored: only *.pub files are trust anchors")
    keys = load_trusted_keys(d)
    assert sorted(keys) == sorted(fps)
    assert all(k.source.parent == d for k in keys.values())


def test_writable_trust_anchor_is_refused(tmp_path: Path) -> None:
    d, _ = _trusted_dir(tmp_path, 1)
    (d / "hq0.pub").chmod(0o666)
    with pytest.raises(KeyFileError, match="writable by group or others"):
        load_trusted_keys(d)


def test_malformed_trust_anchor_is_refused(tmp_path: Path) -> None:
    d, _ = _trusted_dir(tmp_path, 1)
    (d / "junk.pub").write_text("ssh-ed25519 AAAA... not PEM")
    (d / "junk.pub").chmod(0o644)
    with pytest.raises(KeyFileError, match="junk.pub is not a PEM public key"):
        load_trusted_keys(d)


def test_empty_or_absent_trust_dir(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        load_trusted_keys(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(KeyFileError, match=r"no trusted signing keys \(\*\.pub\)"):
        load_trusted_keys(tmp_path / "empty")


def test_fingerprint_differs_per_key() -> None:
    a, b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    assert fingerprint(a.public_key()) != fingerprint(b.public_key())
