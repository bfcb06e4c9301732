"""Reading a user's file: bytes, encoding, and the one-line errors for what can go wrong."""

from __future__ import annotations

import codecs
import io
import tokenize
from dataclasses import dataclass
from pathlib import Path


class SourceError(Exception):
    """The file cannot be read or decoded; the message is one line for the user."""


@dataclass(frozen=True)
class Source:
    path: str
    data: bytes
    text: str
    encoding: str


def decode(path: str, data: bytes) -> Source:
    """Decode like the interpreter does: BOM, then a PEP 263 coding cookie, then UTF-8."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as error:
        raise SourceError(f"cannot detect the encoding: {error.msg}") from error
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as error:
        raise SourceError(
            f"not valid {encoding}: {error.reason if hasattr(error, 'reason') else error}"
        ) from error
    if text.startswith("\ufeff"):
        text = text[1:]
    return Source(path=path, data=data, text=text, encoding=encoding)


def read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except PermissionError as error:
        raise SourceError("permission denied") from error
    except IsADirectoryError as error:
        raise SourceError("is a directory") from error
    except OSError as error:
        raise SourceError(error.strerror or str(error)) from error


def has_bom(data: bytes) -> bool:
    return data.startswith(codecs.BOM_UTF8)
