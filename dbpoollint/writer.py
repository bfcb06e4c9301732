"""Write a fixed file safely: atomically, in its own encoding, BOM, newlines and mode."""

from __future__ import annotations

import codecs
import contextlib
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path


class StaleFileError(Exception):
    """The file changed on disk after it was read; it is left alone."""


def encode_like(original: bytes, text: str, encoding: str) -> bytes:
    data = text.encode(encoding)
    if original.startswith(codecs.BOM_UTF8) and not data.startswith(codecs.BOM_UTF8):
        data = codecs.BOM_UTF8 + data
    return data


# Signals that end a run (Ctrl-C, `kill`): held back while one file is being replaced, so an
# interrupted fix leaves every file either written or untouched, and no temp file behind.
_DEFERRED_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Block SIGINT/SIGTERM (delivered when the block ends); a no-op where that is unsupported."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _DEFERRED_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def write_atomically(path: Path, original: bytes, data: bytes) -> None:
    """Replace `path` with `data` unless its content is no longer `original`.

    A symlink is never replaced by a regular file: its target is written (in the target's
    folder, so the rename stays atomic) and the link stays a link.
    """
    target = path.resolve() if path.is_symlink() else path
    with _signals_deferred():
        _replace(target, original, data)


def _replace(path: Path, original: bytes, data: bytes) -> None:
    if path.read_bytes() != original:
        raise StaleFileError(f"{path}: changed on disk since it was read; not rewritten")
    mode = path.stat().st_mode
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode & 0o7777)
        if path.read_bytes() != original:
            raise StaleFileError(f"{path}: changed on disk since it was read; not rewritten")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
