"""Progress bars on a terminal, silence in the journal or in tests."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """Wrap `items` in a tqdm bar when stderr is a terminal; otherwise yield them unchanged."""
    if not sys.stderr.isatty():
        yield from items
        return
    yield from tqdm(items, desc=desc, total=total, unit="it", leave=False, dynamic_ncols=True)


class ProgressBar:
    """A `(done, total)` callback drawing a tqdm bar on a terminal (for APIs that report progress by
    callback rather than by iteration); `close()` removes the bar and is safe twice."""

    def __init__(self, desc: str) -> None:
        self.desc = desc
        self._bar: tqdm | None = None
        self._done = 0

    def __call__(self, done: int, total: int) -> None:
        if not sys.stderr.isatty():
            return
        if self._bar is None:
            self._bar = tqdm(desc=self.desc, total=total, unit="it", leave=False, dynamic_ncols=True)
        self._bar.update(done - self._done)
        self._done = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
