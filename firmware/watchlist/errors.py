"""Why a watchlist bundle was refused: one subclass of BundleError per cause, each with a stable `code`.

The code is what the audit log and `--json` output carry; `summary` is the few words the viewer's status bar
shows for it (no names or paths: the message, which may name an image, stays in the audit log); the message
is what an officer at the van reads. Every refusal leaves the active watchlist untouched: nothing is written
before all checks pass.
"""

from __future__ import annotations

from firmware.errors import BundleError, LfrError


class BundleRefused(BundleError):
    """Base of every refusal of a bundle or of its source files at build time."""

    code = "refused"
    summary = "bundle refused"


class OutputExists(LfrError, FileExistsError):
    """`lfr watchlist build` would overwrite an existing bundle without --force."""

    code = "output_exists"
    summary = "bundle file exists already"


# -- reading the source ------------------------------------------------------------------------------------
class BundleNotFound(BundleRefused):
    """No bundle at the path given, or none at the top of the stick's folder."""

    code = "not_found"
    summary = "no bundle found on the stick"


class SeveralBundles(BundleRefused):
    """The stick holds more than one bundle; none is guessed at."""

    code = "several_bundles"
    summary = "more than one bundle on the stick"


class BundleReadError(BundleRefused):
    """The file could not be read to its end (e.g. the USB stick was pulled out)."""

    code = "read_failed"
    summary = "bundle could not be read (stick removed?)"


class BundleTooLarge(BundleRefused):
    """The bundle file is larger than watchlist.max_bundle_mib."""

    code = "bundle_too_large"
    summary = "bundle file too large"


# -- the archive -------------------------------------------------------------------------------------------
class ArchiveCorrupt(BundleRefused):
    """Not an uncompressed tar, truncated, too many members, or data hidden after its end."""

    code = "archive_corrupt"
    summary = "bundle file corrupt"


class UnsafePath(BundleRefused):
    """A member name or image path leaves the bundle (`..`) or is otherwise unsafe."""

    code = "unsafe_path"
    summary = "unsafe path in the bundle"


class AbsolutePath(UnsafePath):
    """A member name or image path that starts at the root (`/etc/...`, `C:`)."""

    code = "absolute_path"
    summary = "absolute path in the bundle"


class LinkMember(BundleRefused):
    """A symbolic or hard link inside the archive."""

    code = "link_member"
    summary = "link inside the bundle"


class SpecialMember(BundleRefused):
    """A device, fifo, directory or other non-regular member inside the archive."""

    code = "special_member"
    summary = "special file inside the bundle"


class MemberTooLarge(BundleRefused):
    """One member (image or manifest) is larger than watchlist.max_image_mib."""

    code = "member_too_large"
    summary = "file in the bundle too large"


class DuplicateMember(BundleRefused):
    """Two archive members with the same name (the second could shadow the first)."""

    code = "duplicate_member"
    summary = "file twice in the bundle"


class ExtraFile(BundleRefused):
    """A file in the archive that the signed manifest does not list."""

    code = "extra_file"
    summary = "file not listed in the signed manifest"


# -- signature ---------------------------------------------------------------------------------------------
class SignatureMissing(BundleRefused):
    """The archive has no manifest.sig: unsigned lists are refused."""

    code = "signature_missing"
    summary = "signature missing"


class UntrustedSigner(BundleRefused):
    """Signed by a key that is not among the appliance's trusted signers."""

    code = "untrusted_signer"
    summary = "signature by an untrusted key"


class SignatureMalformed(BundleRefused):
    """manifest.sig is not the expected JSON with an Ed25519 signature."""

    code = "signature_malformed"
    summary = "signature malformed"


class ManifestTampered(BundleRefused):
    """The signature does not verify over the manifest: it was edited after signing (or the signature was)."""

    code = "manifest_tampered"
    summary = "manifest edited after signing"


# -- manifest content --------------------------------------------------------------------------------------
class ManifestInvalid(BundleRefused):
    """The signed manifest is malformed: a missing or unknown field, bad text, unknown version."""

    code = "manifest_invalid"
    summary = "manifest invalid"


class EntriesCsvInvalid(BundleRefused):
    """The entries CSV at build time: wrong columns, a row with too many or too few cells, bad encoding."""

    code = "csv_invalid"
    summary = "entries CSV invalid"


class DuplicateId(BundleRefused):
    """Two entries share one id."""

    code = "duplicate_id"
    summary = "two entries with one id"


class EmptyWatchlist(BundleRefused):
    """The list has no entries (loading it would silently stop all matching)."""

    code = "empty_watchlist"
    summary = "list has no entries"


class UnknownCategory(BundleRefused):
    """An entry's category is neither a policy category nor one added in config."""

    code = "unknown_category"
    summary = "unknown category"


class WindowInvalid(BundleRefused):
    """valid-from/valid-until malformed, reversed, or longer than policy allows."""

    code = "window_invalid"
    summary = "validity window invalid"


class CreatedInFuture(BundleRefused):
    """The bundle's created_at lies ahead of the appliance clock by more than the allowed clock skew."""

    code = "created_in_future"
    summary = "list dated in the future (check the clock)"


class NotYetValid(BundleRefused):
    """The appliance clock is before the bundle's valid-from."""

    code = "not_yet_valid"
    summary = "list not valid yet"


class Expired(BundleRefused):
    """The appliance clock is at or after the bundle's valid-until."""

    code = "expired"
    summary = "list expired"


# -- images ------------------------------------------------------------------------------------------------
class ImageMissing(BundleRefused):
    """An image the manifest lists is absent (or, at build time, unreadable)."""

    code = "image_missing"
    summary = "image missing"


class ImageHashMismatch(BundleRefused):
    """An image's SHA-256 differs from the signed manifest: edited or swapped after signing."""

    code = "image_hash_mismatch"
    summary = "image edited or swapped after signing"


class NotAnImage(BundleRefused):
    """A file named as an image whose content is not JPEG or PNG."""

    code = "not_an_image"
    summary = "file is not an image"


class TruncatedImage(BundleRefused):
    """A JPEG or PNG whose header is fine but whose data is cut short or corrupt."""

    code = "truncated_image"
    summary = "image truncated or corrupt"


class ImageMetadataTooLarge(BundleRefused):
    """A compressed metadata chunk (PNG iCCP, zTXt, iTXt) inflates beyond the limit, or there are too many."""

    code = "image_metadata_too_large"
    summary = "image metadata too large"


class ImageTooLarge(BundleRefused):
    """Too many pixels declared in the header: a decompression bomb, refused before decoding."""

    code = "image_too_large"
    summary = "image too large (decompression bomb?)"


# -- against the van's history -----------------------------------------------------------------------------
class Rollback(BundleRefused):
    """Not newer than the deployment's newest list, or a list the van already replaced or wiped."""

    code = "rollback"
    summary = "older or already replaced list (rollback)"


class CreatedBeforeDeployment(BundleRefused):
    """The bundle was created too long before its deployment was started (authorised) on the van."""

    code = "created_before_deployment"
    summary = "list older than the deployment"


# -- the checker itself ------------------------------------------------------------------------------------
class BundleCheckFailed(BundleRefused):
    """An unexpected error while checking the bundle; refused rather than trusted (details in the journal)."""

    code = "check_failed"
    summary = "bundle could not be checked (see the journal)"
