"""The handheld listener's TLS certificate: self-signed, made by the viewer on first start.

The key (EC P-256) and certificate live in the viewer's state folder (key mode 0600). The certificate names
the address phones use (an IP address or host name) and `localhost`; a certificate that does not name the
current address, or that expires within 30 days, is replaced. Phones pin it by its SHA-256 fingerprint,
shown on the operator's pairing screen (see docs/handheld.md for installing it on phones).
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from firmware.errors import ViewerError

log = logging.getLogger(__name__)

VALID_DAYS = 397
RENEW_DAYS = 30
CERT_FILE = "handheld-cert.pem"
KEY_FILE = "handheld-key.pem"


@dataclass(frozen=True)
class Certificate:
    """Paths of the PEM files and the certificate's SHA-256 fingerprint (hex pairs, colon-separated)."""

    cert_file: Path
    key_file: Path
    fingerprint: str


def _fingerprint(cert: object) -> str:
    from cryptography.hazmat.primitives import hashes

    digest = cert.fingerprint(hashes.SHA256())  # type: ignore[attr-defined]
    return ":".join(f"{b:02X}" for b in digest)


def _names(cert: object) -> set[str]:
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value  # type: ignore[attr-defined]
    except x509.ExtensionNotFound:
        return set()
    return {str(n) for n in san.get_values_for_type(x509.IPAddress)} | set(san.get_values_for_type(x509.DNSName))


def ensure_certificate(directory: Path, address: str) -> Certificate:
    """The certificate for `address` in `directory`, made (or remade) when missing, stale or for another name."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    cert_file, key_file = directory / CERT_FILE, directory / KEY_FILE
    now = datetime.datetime.now(datetime.UTC)
    if cert_file.exists() and key_file.exists():
        try:
            cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        except ValueError as exc:
            log.warning("handheld certificate %s is unreadable (%s); making a new one", cert_file, exc)
        else:
            fresh = cert.not_valid_after_utc - now > datetime.timedelta(days=RENEW_DAYS)
            if fresh and address in _names(cert):
                return Certificate(cert_file, key_file, _fingerprint(cert))
            log.info("handheld certificate %s is stale or does not name %s; making a new one", cert_file, address)
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = [x509.DNSName("localhost")]
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(address)))
        except ValueError:
            names.append(x509.DNSName(address))
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"LFR van handhelds ({address})")])
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
                .add_extension(x509.SubjectAlternativeName(names), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    except OSError as exc:
        raise ViewerError(f"cannot write the handheld certificate in {directory}: {exc}") from exc
    log.info("made handheld certificate %s for %s", cert_file, address)
    return Certificate(cert_file, key_file, _fingerprint(cert))
