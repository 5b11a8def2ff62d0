"""Progress bars on stderr (tqdm) when it is a terminal, or nothing when hidden."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm.auto import tqdm

Step = Callable[[int], None]


@contextmanager
def progress(total: int, desc: str, show: bool, unit: str = "sample") -> Iterator[Step]:
    """A bar's `update(n)`; a no-op when `show` is off, stderr is no terminal (a log, CI) or there is nothing to do.
    The bar is cleared when done."""
    hidden = not show or total == 0 or not sys.stderr.isatty()
    with tqdm(total=total, desc=desc, unit=unit, disable=hidden, leave=False, file=sys.stderr) as bar:
        yield bar.update
