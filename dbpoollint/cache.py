"""Per-file results cached by content: an unchanged file is never parsed twice.

An entry is one file's `FileResult` (summary, findings, suppressions), pickled, under a key
that hashes everything the result depends on: the file's bytes, its path, module name and
test status, the tool's own code, and the packs' contents. Nothing else feeds `analyse_file`:
selection, per-file ignores and fix values apply in the join, which always reruns from the
(cached) summaries, so a change there needs no invalidation. The cache does not care what a
summary holds: a change to the dataclasses changes the tool fingerprint, and an entry that
cannot be unpickled or carries another stamp is a miss, rewritten by the run.

A second kind of entry holds one file's fixes (`fix_key`): the file's bytes plus a `repr` of
every fix its findings ask for, so an unchanged file with unchanged findings runs no codemod.
A third (`memo_key`) holds what the engine computes from many files at once, keyed by their
keys: which skipped files the second pass must parse.

Writes go to a temporary file in the same folder and are renamed over the entry, so two
concurrent runs never see half an entry: the last rename wins, and both are valid.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dbpoollint import __version__
from dbpoollint.pack_dir import builtin_pack_dir

if TYPE_CHECKING:
    from dbpoollint.checks.base import Fix
    from dbpoollint.engine import FileResult, Job

CACHE_FOLDER = ".dbpoollint_cache"
ENV_VARIABLE = "DBPOOLLINT_CACHE_DIR"
# Bump when the layout of an entry changes.
FORMAT = "dbpoollint-cache-1"
_PACKAGE = Path(__file__).resolve().parent


def cache_folder(root: Path, configured: str | None = None) -> Path:
    """`DBPOOLLINT_CACHE_DIR`, else `cache-dir` from the config (relative to its folder),
    else `.dbpoollint_cache/` at the project root."""
    chosen = os.environ.get(ENV_VARIABLE) or configured
    if chosen:
        path = Path(chosen).expanduser()
        return path if path.is_absolute() else root / path
    return root / CACHE_FOLDER


def _tool_fingerprint() -> str:
    """The version, plus every source file's size and mtime: a development checkout whose
    code changed must not reuse results of the old code."""
    digest = hashlib.sha256(f"{FORMAT}\0{__version__}".encode())
    for path in sorted(_PACKAGE.rglob("*.py")):
        stat = path.stat()
        digest.update(
            f"\0{path.relative_to(_PACKAGE)}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()
        )
    return digest.hexdigest()


def packs_fingerprint(pack_files: Iterable[Path]) -> str:
    """The contents of every pack file (built-in and the user's), in order."""
    digest = hashlib.sha256()
    for path in pack_files:
        digest.update(str(path).encode() + b"\0")
        with contextlib.suppress(OSError):
            digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


class ResultCache:
    """`get(job)` / `put(job, result)`; a job is the tuple `analyse_file` runs on."""

    def __init__(self, folder: Path, extra_packs: Sequence[Path] = ()) -> None:
        self.folder = folder
        pack_files = [*sorted(builtin_pack_dir().glob("*.toml")), *extra_packs]
        self.salt = f"{_tool_fingerprint()}\0{packs_fingerprint(pack_files)}".encode()
        self.hits = 0
        self.misses = 0
        self._ready = False

    def key(self, job: Job) -> str:
        path, data, module, is_test, force = job
        digest = hashlib.sha256(self.salt)
        digest.update(f"\0{path}\0{module}\0{is_test}\0{force}\0".encode())
        digest.update(data)
        return digest.hexdigest()

    def _entry(self, key: str, kind: str = "files") -> Path:
        return self.folder / kind / key[:2] / key

    def get(self, job: Job, key: str | None = None) -> FileResult | None:
        """The stored result of `job`; `key` is `self.key(job)` when the caller has it."""
        from dbpoollint.engine import FileResult

        result = self._load(key or self.key(job))
        return result if isinstance(result, FileResult) and result.path == job[0] else None

    def put(self, job: Job, result: FileResult) -> None:
        self._store(self.key(job), result)

    def memo_key(self, name: str, parts: Iterable[str]) -> str:
        """The key of a value computed from many files (their keys among the `parts`)."""
        digest = hashlib.sha256(self.salt)
        digest.update(f"\0memo\0{name}".encode())
        for part in parts:
            digest.update(b"\0" + part.encode())
        return digest.hexdigest()

    def get_memo(self, key: str) -> object | None:
        return self._load(key, "memo")

    def put_memo(self, key: str, value: object) -> None:
        self._store(key, value, "memo")

    def fix_key(self, path: str, data: bytes, requests: object) -> str:
        """The key of one file's fixes: its bytes and a `repr` of every fix asked of it."""
        digest = hashlib.sha256(self.salt)
        digest.update(f"\0fixes\0{path}\0{requests!r}\0".encode())
        digest.update(data)
        return digest.hexdigest()

    def get_fixes(self, key: str) -> list[Fix | None] | None:
        fixes = self._load(key, "fixes")
        return fixes if isinstance(fixes, list) else None

    def put_fixes(self, key: str, fixes: list[Fix | None]) -> None:
        self._store(key, fixes, "fixes")

    def _load(self, key: str, kind: str = "files") -> object | None:
        """The stored value, or None (and a miss) when absent, corrupt or foreign."""
        try:
            with open(self._entry(key, kind), "rb") as handle:
                stamp, stored_key, value = pickle.load(handle)
        except Exception:  # absent, corrupt, truncated, or written by an incompatible version
            self.misses += 1
            return None
        if stamp != FORMAT or stored_key != key:
            self.misses += 1
            return None
        self.hits += 1
        return value  # type: ignore[no-any-return]

    def _store(self, key: str, value: object, kind: str = "files") -> None:
        """Store atomically; a cache that cannot be written only costs speed."""
        entry = self._entry(key, kind)
        try:
            self._prepare(entry.parent)
            atomic_write(entry, pickle.dumps((FORMAT, key, value), pickle.HIGHEST_PROTOCOL))
        except OSError:
            return

    def write_file(self, name: str, data: bytes) -> None:
        """A file of the cache's own at its top (the manifest), written atomically."""
        try:
            self._prepare(self.folder)
            atomic_write(self.folder / name, data)
        except OSError:
            return

    def _prepare(self, directory: Path) -> None:
        if not self._ready:
            self.folder.mkdir(parents=True, exist_ok=True)
            ignore = self.folder / ".gitignore"
            if not ignore.exists():
                # Like ruff's cache: the folder keeps itself out of version control.
                atomic_write(ignore, b"# Automatically created by dbpoollint.\n*\n")
            tag = self.folder / "CACHEDIR.TAG"
            if not tag.exists():
                atomic_write(tag, b"Signature: 8a477f597d28d172789f06886806bc55\n")
            self._ready = True
        directory.mkdir(parents=True, exist_ok=True)


def atomic_write(path: Path, data: bytes) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def clean(folder: Path) -> bool:
    """Remove the cache folder; False when there was none."""
    if not folder.exists():
        return False
    if not (folder / "CACHEDIR.TAG").is_file():
        # `cache-dir = "."` must not make `clean` delete a project.
        raise OSError(
            f"{folder}: has no CACHEDIR.TAG, so it is not a dbpoollint cache; not removed"
        )
    shutil.rmtree(folder)
    return True
