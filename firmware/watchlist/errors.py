"""Why a watchlist bundle was refused: one subclass of BundleError per cause, each with a stable `code`.

The code is what the audit log, `--json` output, the status LED and the viewer show; the message is what an
officer reads. Every refusal leaves the active watchlist untouched: nothing is written before all checks pass.
"""

from __future__ import annotations

from firmware.errors import BundleError, LfrError


class BundleRefused(BundleError):
    """Base of every refusal of a bundle or of its source files at build time."""

    code = "refused"


class OutputExists(LfrError, FileExistsError):
    """`lfr watchlist build` would overwrite an existing bundle without --force."""

    code = "output_exists"


# -- reading the source ------------------------------------------------------------------------------------
class BundleNotFound(BundleRefused):
    code = "not_found"


class SeveralBundles(BundleRefused):
    code = "several_bundles"


class BundleReadError(BundleRefused):
    """The file could not be read to its end (e.g. the USB stick was pulled out)."""

    code = "read_failed"


class BundleTooLarge(BundleRefused):
    code = "bundle_too_large"


# -- the archive -------------------------------------------------------------------------------------------
class ArchiveCorrupt(BundleRefused):
    code = "archive_corrupt"


class UnsafePath(BundleRefused):
    """A member name or image path leaves the bundle (`..`) or is otherwise unsafe."""

    code = "unsafe_path"


class AbsolutePath(UnsafePath):
    code = "absolute_path"


class LinkMember(BundleRefused):
    """A symbolic or hard link inside the archive."""

    code = "link_member"


class SpecialMember(BundleRefused):
    """A device, fifo, directory or other non-regular member inside the archive."""

    code = "special_member"


class MemberTooLarge(BundleRefused):
    code = "member_too_large"


class DuplicateMember(BundleRefused):
    code = "duplicate_member"


class ExtraFile(BundleRefused):
    code = "extra_file"


# -- signature ---------------------------------------------------------------------------------------------
class SignatureMissing(BundleRefused):
    code = "signature_missing"


class UntrustedSigner(BundleRefused):
    code = "untrusted_signer"


class SignatureMalformed(BundleRefused):
    code = "signature_malformed"


class ManifestTampered(BundleRefused):
    """The signature does not verify over the manifest: it was edited after signing (or the signature was)."""

    code = "manifest_tampered"


# -- manifest content --------------------------------------------------------------------------------------
class ManifestInvalid(BundleRefused):
    code = "manifest_invalid"


class EntriesCsvInvalid(BundleRefused):
    """The entries CSV at build time: wrong columns, a row with too many or too few cells, bad encoding."""

    code = "csv_invalid"


class DuplicateId(BundleRefused):
    code = "duplicate_id"


class EmptyWatchlist(BundleRefused):
    code = "empty_watchlist"


class UnknownCategory(BundleRefused):
    code = "unknown_category"


class WindowInvalid(BundleRefused):
    """valid-from/valid-until malformed, reversed, or longer than policy allows."""

    code = "window_invalid"


class NotYetValid(BundleRefused):
    code = "not_yet_valid"


class Expired(BundleRefused):
    code = "expired"


# -- images ------------------------------------------------------------------------------------------------
class ImageMissing(BundleRefused):
    code = "image_missing"


class ImageHashMismatch(BundleRefused):
    """An image's SHA-256 differs from the signed manifest: edited or swapped after signing."""

    code = "image_hash_mismatch"


class NotAnImage(BundleRefused):
    code = "not_an_image"


class TruncatedImage(BundleRefused):
    code = "truncated_image"


class ImageTooLarge(BundleRefused):
    """Too many pixels declared in the header: a decompression bomb, refused before decoding."""

    code = "image_too_large"
