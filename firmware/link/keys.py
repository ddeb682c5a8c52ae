"""CURVE key files for the link, their fingerprints, and the appliance's list of paired laptop keys.

A keypair is two text files: `NAME.key` (public, may be copied anywhere) and `NAME.key_secret` (public and
secret, mode 0600). A secret file that group or others can access is refused, because anyone who reads it
can pose as this machine. Fingerprints (SHA-256 of the raw public key, first 16 bytes as hex groups) are
what two people read aloud to each other when pairing a laptop with a van.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

import zmq
from zmq.utils import z85

from firmware.errors import KeyFileError
from firmware.throttle import ThrottledLog

log = logging.getLogger(__name__)

PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"
DEFAULT_NAME = "link"


@dataclass(frozen=True)
class KeyPair:
    """A CURVE keypair as Z85 text (40 ASCII characters each), the form libzmq's socket options take."""

    public: bytes
    secret: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public)


def fingerprint(public_z85: bytes) -> str:
    """Human-comparable fingerprint of a public key, e.g. `3f2a 91c0 ...` (8 groups of 4 hex digits)."""
    digest = hashlib.sha256(z85.decode(public_z85)).hexdigest()[:32]
    return " ".join(digest[i:i + 4] for i in range(0, 32, 4))


def normalise_fingerprint(text: str) -> str:
    """A typed fingerprint without spaces, colons or case, for comparison."""
    return "".join(c for c in text.lower() if c in "0123456789abcdef")


def check_z85_key(value: bytes, what: str) -> bytes:
    """`value` if it is a Z85-encoded 32-byte key, else KeyFileError naming `what`."""
    if len(value) != 40:
        raise KeyFileError(f"{what}: a CURVE key is 40 Z85 characters, got {len(value)}")
    try:
        z85.decode(value)
    except (ValueError, KeyError, TypeError) as exc:
        raise KeyFileError(f"{what}: not a Z85-encoded key ({exc})") from None
    return value


def _read_fields(path: Path) -> dict[str, bytes]:
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist (make one with `lfr keys init`)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"key file {path} cannot be read: {exc}") from None
    fields: dict[str, bytes] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise KeyFileError(f"key file {path} line {number}: expected `name = \"value\"`")
        fields[name.strip()] = value.strip().strip('"').encode("ascii")
    return fields


def check_secret_mode(path: Path) -> None:
    """Refuse a secret key file that group or others may read or write (anything looser than 0600)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyFileError(f"secret key file {path} does not exist (make one with `lfr keys init`)") from None
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise KeyFileError(f"secret key file {path} has mode {mode:04o}: group or others can access it; "
                           f"run `chmod 600 {path}` (and make a new keypair if it may have leaked)")


def load_public(path: Path | str) -> bytes:
    """The Z85 public key in a `.key` or `.key_secret` file."""
    path = Path(path)
    fields = _read_fields(path)
    if "public-key" not in fields:
        raise KeyFileError(f"key file {path} has no public-key line")
    return check_z85_key(fields["public-key"], f"public key in {path}")


CREDENTIAL_NAME = "curve-secret"


def secret_key_source(configured: Path | str) -> Path:
    """Where to read this machine's secret key: the copy systemd hands the service through
    `LoadCredential=curve-secret:...` ($CREDENTIALS_DIRECTORY/curve-secret) when there is one, else the
    configured file. The unit keeps the key file itself out of reach of the sandboxed service."""
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if directory and (Path(directory) / CREDENTIAL_NAME).is_file():
        return Path(directory) / CREDENTIAL_NAME
    return Path(configured)


def load_keypair(path: Path | str) -> KeyPair:
    """The keypair in a `.key_secret` file, refused when its mode is looser than 0600 or halves disagree."""
    path = Path(path)
    check_secret_mode(path)
    fields = _read_fields(path)
    if "public-key" not in fields or "secret-key" not in fields:
        raise KeyFileError(f"secret key file {path} needs both public-key and secret-key lines")
    public = check_z85_key(fields["public-key"], f"public key in {path}")
    secret = check_z85_key(fields["secret-key"], f"secret key in {path}")
    if zmq.curve_public(secret) != public:
        raise KeyFileError(f"secret key file {path}: the public key does not belong to the secret key")
    return KeyPair(public=public, secret=secret)


def _write_atomic(path: Path, text: str, mode: int) -> None:
    """Write `text` to `path` through a temporary file created with `mode`, so no reader sees half a key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def create_keypair(directory: Path | str, name: str = DEFAULT_NAME, *, overwrite: bool = False) -> KeyPair:
    """Make a new keypair in `directory` as NAME.key (0644) and NAME.key_secret (0600)."""
    directory = Path(directory)
    public_path, secret_path = directory / (name + PUBLIC_SUFFIX), directory / (name + SECRET_SUFFIX)
    if not overwrite and (public_path.exists() or secret_path.exists()):
        raise KeyFileError(f"{secret_path} already exists; pairing uses it, so it is not replaced "
                           f"(remove it first to make a new one)")
    public, secret = zmq.curve_keypair()
    pair = KeyPair(public=public, secret=secret)
    header = f"# LFR link CURVE key, fingerprint {pair.fingerprint}\n"
    _write_atomic(secret_path, header + "# SECRET: keep private, mode 0600\n"
                  f'public-key = "{public.decode()}"\nsecret-key = "{secret.decode()}"\n', 0o600)
    _write_atomic(public_path, header + f'public-key = "{public.decode()}"\n', 0o644)
    log.info("made CURVE keypair %s (fingerprint %s)", secret_path, pair.fingerprint)
    return pair


class AllowedKeys:
    """The appliance's paired laptop keys: one `Z85KEY  comment` per line in a text file in the config dir.

    Read afresh on every check, so pairing and unpairing take effect at the next connection without a
    restart. A missing file means no laptop is paired (every client is refused).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.warnings = ThrottledLog(log)  # unauthenticated handshakes: a few warning lines, not one each

    def entries(self) -> dict[bytes, str]:
        """Paired public keys (Z85) and their comments."""
        try:
            text = self.path.read_text(encoding="ascii")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyFileError(f"allowed-keys file {self.path} cannot be read: {exc}") from None
        keys: dict[bytes, str] = {}
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, _, comment = line.partition(" ")
            keys[check_z85_key(key.encode(), f"{self.path} line {number}")] = comment.strip()
        return keys

    def is_allowed(self, public_z85: bytes) -> bool:
        return public_z85 in self.entries()

    def callback(self, domain: str, key: bytes) -> bool:
        """ZAP credentials-provider hook (pyzmq's `configure_curve_callback`): True admits the client."""
        try:
            allowed = self.is_allowed(bytes(key))
        except KeyFileError as exc:
            log.error("refusing every laptop: %s", exc)
            return False
        if not allowed:
            self.warnings.warning("unpaired", "refused a laptop with unpaired key %s", fingerprint(bytes(key)))
        return allowed

    def _save(self, keys: dict[bytes, str]) -> None:
        lines = ["# Laptop CURVE public keys paired with this appliance (lfr keys pair / unpair)"]
        lines += [f"{key.decode()} {comment}".rstrip() for key, comment in keys.items()]
        _write_atomic(self.path, "\n".join(lines) + "\n", 0o644)

    def pair(self, public_z85: bytes, comment: str = "") -> bool:
        """Add a laptop key; False when it was already paired."""
        keys = self.entries()
        if public_z85 in keys:
            return False
        keys[check_z85_key(public_z85, "laptop key")] = comment.replace("\n", " ")
        self._save(keys)
        log.info("paired laptop key %s", fingerprint(public_z85))
        return True

    def unpair(self, key_or_fingerprint: bytes | str) -> bytes:
        """Remove one laptop key given as Z85 bytes or a fingerprint (or an unambiguous prefix of one)."""
        keys = self.entries()
        if isinstance(key_or_fingerprint, bytes):
            matches = [k for k in keys if k == key_or_fingerprint]
        else:
            wanted = normalise_fingerprint(key_or_fingerprint)
            matches = [k for k in keys if wanted and normalise_fingerprint(fingerprint(k)).startswith(wanted)]
        if len(matches) != 1:
            problem = "no paired key matches" if not matches else f"{len(matches)} paired keys match"
            raise KeyFileError(f"{problem} {key_or_fingerprint!r} in {self.path}")
        del keys[matches[0]]
        self._save(keys)
        log.info("unpaired laptop key %s", fingerprint(matches[0]))
        return matches[0]
