"""Files the rules read from disk by name, outside the discovered ones, recorded while a run
records: env files a module loads by name (`load_dotenv("config/x")`) and `-r` includes of
requirements files.

A replayed run result (`run_memo`) is only valid while every file it read still reads the same,
and every file it looked for and missed is still missing: each read leaves the file's digest,
each miss None.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Mapping

# The recorders of the runs in progress (a stack: a run inside a run records into both).
_RECORDERS: list[dict[str, str | None]] = []


def fingerprint(path: str) -> str | None:
    """The digest of the file's bytes; None when it is no readable file."""
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return None


def _note(path: str, data: bytes | None) -> None:
    if _RECORDERS:
        digest = hashlib.sha256(data).hexdigest() if data is not None else None
        for recorder in _RECORDERS:
            recorder[path] = digest


def read_text(path: str, limit: int | None = None) -> str | None:
    """The file's text as `open(path, encoding="utf-8", errors="replace").read()` gives it;
    None when it cannot be read or is larger than `limit` bytes."""
    data = _bytes_or_none(path)
    _note(path, data)
    if data is None or (limit is not None and len(data) > limit):
        return None
    # Text mode's universal newlines, as the readers this replaces had them.
    return data.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")


def is_file(path: str) -> bool:
    found = os.path.isfile(path)
    if _RECORDERS:
        _note(path, _bytes_or_none(path) if found else None)
    return found


def _bytes_or_none(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


@contextlib.contextmanager
def recording() -> Iterator[dict[str, str | None]]:
    """Record every read of this module inside the block: path -> digest, or None."""
    recorder: dict[str, str | None] = {}
    _RECORDERS.append(recorder)
    try:
        yield recorder
    finally:
        _RECORDERS.remove(recorder)


def unchanged(recorded: Mapping[str, str | None]) -> bool:
    return all(fingerprint(path) == digest for path, digest in recorded.items())
