"""One root for every error the firmware raises, each also a built-in so callers can catch either."""

from __future__ import annotations


class LfrError(Exception):
    """Base of every error the firmware raises on purpose; the CLI prints these without a traceback."""


class ConfigError(LfrError, ValueError):
    """The configuration file is missing, malformed, or holds an unknown key or an out-of-range value."""


class ModelError(LfrError, RuntimeError):
    """A model file is missing, corrupt, of the wrong shape, or does not match the manifest."""


class AcceleratorError(LfrError, RuntimeError):
    """The requested accelerator (e.g. the Edge TPU delegate) could not be loaded or failed at run time."""


class DataError(LfrError, ValueError):
    """Input data (an image, a pairs file, a folder) is missing or unreadable."""


class CameraError(LfrError, RuntimeError):
    """The camera could not be opened or stopped delivering frames."""


class StorageError(LfrError, RuntimeError):
    """The database is locked, corrupted or refuses a write."""


class AuditError(StorageError):
    """The audit chain is broken: a row was edited, deleted or inserted out of order."""


class PolicyError(LfrError, PermissionError):
    """An action would break deployment policy (e.g. scanning with no open deployment or no watchlist)."""


class BundleError(LfrError, ValueError):
    """A watchlist bundle failed verification: signature, window, manifest, or an image in it."""


class LinkError(LfrError, RuntimeError):
    """The van–laptop link failed: bad keys, refused pairing, or a malformed message."""


class KeyFileError(LinkError, PermissionError):
    """A key file is missing, malformed, or readable by others than its owner."""


class MessageError(LinkError, ValueError):
    """A message off the link is malformed; `kind` names the problem (e.g. "bad_json") for counting."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


class ChannelError(LfrError, ValueError):
    """A message between a camera process and the hub is malformed, of an unknown type or schema version."""


class GpioError(LfrError, RuntimeError):
    """No GPIO pin library could reach the pins (not a Pi, library missing, no access to /dev/gpiochip*)."""


class ViewerError(LfrError, RuntimeError):
    """The operator's viewer cannot serve its page (e.g. its port is taken)."""
