"""Write a fixed file safely: atomically, in its own encoding, BOM, newlines and mode."""

from __future__ import annotations

import codecs
import os
import tempfile
from pathlib import Path


class StaleFileError(Exception):
    """The file changed on disk after it was read; it is left alone."""


def encode_like(original: bytes, text: str, encoding: str) -> bytes:
    data = text.encode(encoding)
    if original.startswith(codecs.BOM_UTF8) and not data.startswith(codecs.BOM_UTF8):
        data = codecs.BOM_UTF8 + data
    return data


def write_atomically(path: Path, original: bytes, data: bytes) -> None:
    """Replace `path` with `data` unless its content is no longer `original`."""
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
