"""What each file's bytes hash to, remembered by its `stat`: a warm run reads no unchanged file.

Like git's index, an entry maps a path and its (size, mtime, ctime, inode) to the SHA-256 of
its bytes. A file whose stat differs is read and hashed again. ctime changes on every write,
also one that puts the old mtime back (`touch -d`, an editor keeping timestamps), and the
inode on every replace-by-rename. An entry whose mtime or ctime lies within `RACY_NS` of the
moment the manifest was written is not trusted: the file may have been written again within
the file system's timestamp granularity after it was hashed (git's "racily clean" entries), so
it is hashed again until it is older than that.

The manifest is one file in the cache folder, written atomically: two concurrent runs each
write a valid one and the last rename wins. One that cannot be read is ignored (every file is
then hashed, as without it).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import time
from pathlib import Path

from dbpoollint.cache import ResultCache

FORMAT = "dbpoollint-manifest-1"
NAME = "manifest"
RACY_NS = 2_000_000_000
# (size, mtime_ns, ctime_ns, inode)
Signature = tuple[int, int, int, int]


def signature(stat: os.stat_result) -> Signature:
    return (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Manifest:
    """`digest(path)` without reading when the file's stat is unchanged; `save()` at the end."""

    def __init__(self, cache: ResultCache) -> None:
        self.cache = cache
        self.file = cache.folder / NAME
        self.written_ns = 0
        self.entries: dict[str, tuple[Signature, str]] = {}
        self.changed = False
        self._load()

    def _load(self) -> None:
        try:
            with open(self.file, "rb") as handle:
                stamp, written_ns, entries = pickle.load(handle)
        except Exception:  # absent, truncated, corrupt or from another version: start empty
            return
        if stamp == FORMAT and isinstance(written_ns, int) and isinstance(entries, dict):
            self.written_ns = written_ns
            self.entries = entries

    def digest(self, path: str) -> tuple[str, bytes | None]:
        """The digest of the file's bytes, and the bytes when they had to be read.

        Raises OSError when the file cannot be read.
        """
        stat = os.stat(path)
        found = self.entries.get(os.path.abspath(path))
        if found is not None and found[0] == signature(stat) and self._trusted(stat):
            return found[1], None
        # The stat from before the read: a write during the read leaves a stale signature,
        # which the next run sees differ.
        data = Path(path).read_bytes()
        return self.remember(path, stat, data), data

    def remember(self, path: str, stat: os.stat_result, data: bytes) -> str:
        digest = digest_of(data)
        self.entries[os.path.abspath(path)] = (signature(stat), digest)
        self.changed = True
        return digest

    def _trusted(self, stat: os.stat_result) -> bool:
        newest = max(stat.st_mtime_ns, stat.st_ctime_ns)
        return newest < self.written_ns - RACY_NS

    def save(self) -> None:
        """Write it; a manifest that cannot be written only costs speed."""
        if not self.changed:
            return
        payload = (FORMAT, time.time_ns(), self.entries)
        self.cache.write_file(NAME, pickle.dumps(payload, pickle.HIGHEST_PROTOCOL))
        self.changed = False
