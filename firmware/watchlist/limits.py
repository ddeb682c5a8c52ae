"""Size limits that bound what a bundle may make the appliance read, decode and hold in memory."""

from __future__ import annotations

from dataclasses import dataclass

from firmware.config import WatchlistConfig

MIB = 1024 * 1024


@dataclass(frozen=True)
class BundleLimits:
    """Limits in bytes, pixels and counts; the same values are enforced at build time and at import."""

    max_bundle_bytes: int = 256 * MIB
    max_member_bytes: int = 20 * MIB
    max_entries: int = 5000
    max_image_pixels: int = 40_000_000
    max_validity_hours: float = 72.0

    @property
    def max_members(self) -> int:
        """Images plus manifest and signature; anything beyond is refused before it is read."""
        return self.max_entries + 2

    @classmethod
    def from_config(cls, cfg: WatchlistConfig) -> BundleLimits:
        return cls(max_bundle_bytes=cfg.max_bundle_mib * MIB, max_member_bytes=cfg.max_image_mib * MIB,
                   max_entries=cfg.max_entries, max_image_pixels=int(cfg.max_image_megapixels * 1e6),
                   max_validity_hours=cfg.max_validity_hours)
