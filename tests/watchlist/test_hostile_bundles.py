"""Issue 13, finding 2 and 8: nothing on the way from a bundle's bytes to the verdict may take more than linear
time or raise; each hostile bundle of `hostile.HOSTILE` is refused with its code, by the library, by
`lfr watchlist verify|import --json` (exit 2, JSON, no traceback), with exactly one audit row and no change."""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import sqlite_utils
from bundle_helpers import Keys, members_of
from hostile import HOSTILE, PAX_DIGITS, archive, good_parts, member
from test_bundle_verify import BAD

from firmware.cli.main import main
from firmware.config import load_config
from firmware.hardware.clock import FakeClock
from firmware.store import audit
from firmware.store.db import open_config_db
from firmware.watchlist import errors as E
from firmware.watchlist.active import active_version
from firmware.watchlist.archive import read_archive
from firmware.watchlist.bundle import build_bundle
from firmware.watchlist.enrol import RecognizerEnroller
from firmware.watchlist.images import check_image, decode_bgr
from firmware.watchlist.install import install_bundle
from firmware.watchlist.limits import BundleLimits
from firmware.watchlist.verify import verify_bundle


def _code(exc: BaseException) -> str:
    return str(getattr(exc, "code", type(exc).__name__))


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_bundle_is_refused_with_its_code(name: str, good_bundle: Path, keys: Keys, clock: FakeClock,
                                                 tmp_path: Path) -> None:
    make, code = HOSTILE[name]
    bad = tmp_path / "bad.lfrw"
    bad.write_bytes(make(members_of(good_bundle), keys.private))
    with pytest.raises(E.BundleRefused) as info:
        verify_bundle(bad, keys.trusted, clock)
    assert _code(info.value) == code, f"{name}: {info.value}"
    assert type(info.value) is not E.BundleCheckFailed


def test_pax_header_of_240000_digits_is_refused_in_under_a_second(good_bundle: Path, keys: Keys,
                                                                  clock: FakeClock, tmp_path: Path) -> None:
    """Issue 13: tarfile spent 87 s of CPU on this header (and the bundle then verified)."""
    bad = tmp_path / "pax.lfrw"
    bad.write_bytes(archive(member(b"././@PaxHeader", PAX_DIGITS, typeflag=b"x"),
                            *good_parts(members_of(good_bundle))))
    t0 = time.process_time()
    with pytest.raises(E.ArchiveCorrupt, match="pax extended header"):
        verify_bundle(bad, keys.trusted, clock)
    assert time.process_time() - t0 < 1.0


def test_reader_time_is_linear_in_the_member_count() -> None:
    """5,000 small members read in about 10x the time of 500 (a quadratic reader would take 100x).

    CPU time of this process, best of three, so that another process taking the core does not count."""
    def timed(n: int) -> float:
        data = archive(*[member(b"images/%05d.jpg" % i, b"x" * 100) for i in range(n)])
        best = float("inf")
        for _ in range(3):
            t0 = time.process_time()
            assert len(read_archive(data, BundleLimits(max_entries=n))) == n
            best = min(best, time.process_time() - t0)
        return best
    small, large = timed(500), timed(5000)
    assert large < 30 * small, (small, large)


def test_good_bundle_reads_the_same_as_tarfile_wrote_it(good_bundle: Path) -> None:
    """The strict reader is not stricter than the builder: what `write_archive` writes reads back intact."""
    import tarfile
    with tarfile.open(good_bundle) as tf:
        expected = {i.name: tf.extractfile(i).read() for i in tf.getmembers()}  # type: ignore[union-attr]
    assert read_archive(good_bundle.read_bytes(), BundleLimits()) == expected


def snapshot(db: sqlite_utils.Database) -> tuple[str, str | None, int]:
    digest = hashlib.sha256()
    for row in db.execute("SELECT * FROM watchlist_entries ORDER BY id"):
        digest.update(repr(row).encode())
    for row in db.execute("SELECT * FROM watchlists ORDER BY id"):
        digest.update(repr(row).encode())
    return digest.hexdigest(), active_version(db), db.execute("SELECT COUNT(*) FROM audit").fetchone()[0]


def refusals(db: sqlite_utils.Database) -> list[dict[str, object]]:
    return [json.loads(r[0]) for r in
            db.execute("SELECT details FROM audit WHERE action = 'watchlist_import_refused' ORDER BY seq")]


def test_non_utf8_file_name_on_the_stick_is_audited(tmp_path: Path, store: sqlite_utils.Database, keys: Keys,
                                                    clock: FakeClock) -> None:
    """Issue 13, finding 8: a name that is not UTF-8 made the refusal's audit row fail (UnicodeEncodeError)."""
    stick = tmp_path / "stick"
    stick.mkdir()
    bad = Path(stick, "\udcff\x1b[31mday.lfrw")
    bad.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(E.ArchiveCorrupt):
        install_bundle(store, bad, trusted_keys=keys.trusted, clock=clock, enroller=None,  # type: ignore[arg-type]
                       calibration=None, threshold=0.6, actor="test")  # type: ignore[arg-type]
    (row,) = refusals(store)
    assert row["code"] == "archive_corrupt"
    assert "\\udcff" in str(row["source"]) and "\x1b" not in str(row["source"]) + str(row["error"])
    assert audit.verify(store).ok


@pytest.mark.slow
def test_every_hostile_bundle_through_the_cli(tmp_path: Path, keys: Keys, images_dir: Path, entries_csv: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The acceptance of issue 13 through `main`, for every hostile case: `lfr watchlist verify --json` and
    `lfr watchlist import --json` exit 2 with a JSON refusal carrying the code and no traceback; each import
    leaves exactly one new audit row (`watchlist_import_refused`, its code) and changes nothing else."""
    config = tmp_path / "appliance.toml"
    config.write_text(f'[paths]\nstate_dir = "{tmp_path / "state"}"\n'
                      f'[watchlist]\ntrusted_keys_dir = "{keys.trusted_dir}"\n')
    cfg = ("--config", str(config))
    now = time.time()
    live = build_bundle(images_dir=images_dir, entries_csv=entries_csv, deployment_ref="OP-2026-117",
                        valid_from=now - 3600, valid_until=now + 8 * 3600, private_key=keys.private,
                        out=tmp_path / "live.lfrw", created_by="hq", clock=FakeClock(now - 60)).path
    assert main(["deployment", "start", "--authority", "OP-2026-117", "--officer", "PC A", "--location", "X",
                 *cfg]) == 0
    assert main(["watchlist", "import", str(live), *cfg, "--json"]) == 0
    capsys.readouterr()
    db = open_config_db(load_config(config))
    try:
        for name, (make, code) in HOSTILE.items():
            bad = tmp_path / "bad.lfrw"
            bad.write_bytes(make(members_of(live), keys.private))
            for command in ("verify", "import"):
                before, seen = snapshot(db), len(refusals(db))
                status = main(["watchlist", command, str(bad), *cfg, "--json"])
                out = capsys.readouterr()
                assert status == 2, f"{name}: {command} exited {status}"
                assert "Traceback" not in out.err, f"{name}: {command}: {out.err}"
                doc = json.loads(out.out)
                assert doc["code"] == code and doc["valid" if command == "verify" else "imported"] is False, name
                after = snapshot(db)
                if command == "verify":
                    assert after == before, name
                    continue
                assert after[:2] == before[:2] and after[2] == before[2] + 1, f"{name}: state changed"
                new = refusals(db)[seen:]
                assert len(new) == 1 and new[0]["code"] == code, f"{name}: {new}"
        assert audit.verify(db).ok
        before = snapshot(db)[:2]
        assert main(["watchlist", "import", str(live), *cfg]) == 0  # the active list again: a no-op, said so
        assert "already the active watchlist" in capsys.readouterr().out and snapshot(db)[:2] == before
    finally:
        db.close()


@pytest.mark.parametrize("depth", [8, 16])
def test_greyscale_png_decodes_like_the_photo(depth: int, lfw_sample: list[Path],
                                              enroller: RecognizerEnroller) -> None:
    """Issue 13, finding 8: a 16-bit greyscale PNG decoded 94 % white (Pillow clips at 255) and was rejected
    as "no face"; it must decode to the same grey levels as the 8-bit photo and enrol."""
    grey = cv2.imread(str(lfw_sample[0]), cv2.IMREAD_GRAYSCALE)
    pixels = grey.astype(np.uint16) * 257 if depth == 16 else grey
    ok, png = cv2.imencode(".png", pixels)
    assert ok
    check_image("grey.png", png.tobytes(), 10**8)
    bgr = decode_bgr(png.tobytes())
    assert bgr.shape == (*grey.shape, 3)
    assert np.abs(bgr[:, :, 0].astype(int) - grey).max() <= 1
    assert enroller.enrol(bgr).rejection is None


def test_png_metadata_within_the_limit_is_accepted(lfw_sample: list[Path]) -> None:
    """A real-sized ICC profile and caption (a few KB inflated) pass; the limit is for bombs only."""
    from hostile import face_png, png_chunk
    png = face_png(lfw_sample[0].read_bytes(), png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(bytes(3000))),
                   png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"caption " * 100)))
    assert check_image("meta.png", png, 10**8) == (250, 250)


@pytest.mark.parametrize("name", [*BAD, *HOSTILE])
def test_every_refusal_has_exactly_one_audit_row(name: str, store: sqlite_utils.Database, good_bundle: Path,
                                                 keys: Keys, clock: FakeClock, tmp_path: Path) -> None:
    """Every reviewed refusal (test_bundle_verify.BAD and hostile.HOSTILE) through the van's install: exactly
    one `watchlist_import_refused` row with the refusal's code, nothing else written, the chain intact."""
    members = members_of(good_bundle)
    if name in BAD:
        make, error, _ = BAD[name]
        bad, code = make(members, keys.private, tmp_path / "bad.lfrw"), error.code
    else:
        maker, code = HOSTILE[name]
        bad = tmp_path / "bad.lfrw"
        bad.write_bytes(maker(members, keys.private))
    before = snapshot(store)
    with pytest.raises(E.BundleRefused):
        install_bundle(store, bad, trusted_keys=keys.trusted, clock=clock, enroller=None,  # type: ignore[arg-type]
                       calibration=None, threshold=0.6, actor="test")  # type: ignore[arg-type]
    after = snapshot(store)
    assert after[:2] == before[:2] and after[2] == before[2] + 1
    assert [r["code"] for r in refusals(store)] == [code]
    assert audit.verify(store).ok
