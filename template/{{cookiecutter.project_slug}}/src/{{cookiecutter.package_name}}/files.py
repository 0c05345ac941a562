"""Files that readers see whole or not at all: written beside their place, then renamed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def written_whole(path: Path) -> Iterator[Path]:
    """A hidden path beside `path` to write to; it replaces `path` only when the block ends
    normally, so a run killed mid-write never leaves half a file where readers look."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        yield partial
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
