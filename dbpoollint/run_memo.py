"""A whole check's printed report, replayed when nothing it depends on has changed.

An unchanged tree then costs discovery, one `stat` per file and one cache read: no file is
read (the manifest knows its digest), no pack loaded, no summary unpickled, no rule run.

The key hashes everything the report is made of: the tool and packs (the cache's salt), the
interpreter, the working directory, the options and settings, and for every checked and
context file its display path, module names, test status, path context and the digest of its
bytes; then each project file's path and text. The entry also holds the digest of each file
the rules read by name from disk (`disk_reads`), checked before a replay: an env file a module
loads, or a `-r` include, that changed (or appeared) makes it a miss.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dbpoollint import disk_reads
from dbpoollint.cache import ResultCache
from dbpoollint.manifest import Manifest, digest_of


@dataclass(frozen=True)
class PlannedFile:
    """A file to check or read for context, named but not read yet."""

    # The file as the operating system is asked for it (a string: most runs only stat it).
    path: str
    display: str
    module: str
    is_test: bool
    aliases: tuple[str, ...] = ()
    # What the path says about the run context (`contexts.path_context`); None: not asked.
    path_context: str | None = None
    # Set for a folder discovery could not list: the reason, reported as DPL002.
    unlistable: str = ""


@dataclass(frozen=True)
class Report:
    """What a check printed on stdout, and whether it found anything (its exit code)."""

    text: str
    found: bool


class RunMemo:
    def __init__(self, cache: ResultCache) -> None:
        self.cache = cache
        self.manifest = Manifest(cache)
        # display path -> bytes read while computing the key (a changed file), for the check.
        self.read: dict[str, bytes] = {}
        # display path -> the digest the key holds.
        self.digests: dict[str, str] = {}

    def key(
        self,
        options: object,
        groups: Sequence[Sequence[PlannedFile]],
        project_files: Mapping[str, str],
    ) -> str | None:
        """The run's key; None when a file cannot be read (its report is not replayed)."""
        parts = [sys.version, str(Path.cwd()), repr(options)]
        for group in groups:
            parts.append("\0group")
            for planned in group:
                if planned.unlistable:
                    return None
                try:
                    digest, data = self.manifest.digest(planned.path)
                except OSError:
                    return None
                if data is not None:
                    self.read[planned.display] = data
                self.digests[planned.display] = digest
                parts.append(_describe(planned, digest))
        parts.append("\0project files")
        for path in sorted(project_files):
            digest = hashlib.sha256(project_files[path].encode()).hexdigest()
            parts.append(f"{path}\0{digest}")
        return self.cache.memo_key("run", parts)

    def get(self, key: str) -> Report | None:
        stored = self.cache.get_memo(key)
        if not isinstance(stored, tuple) or len(stored) != 2:
            return None
        report, reads = stored
        if not isinstance(report, Report) or not isinstance(reads, dict):
            return None
        return report if disk_reads.unchanged(reads) else None

    def describes(self, sources: Mapping[str, bytes]) -> bool:
        """The bytes the check read are the ones the key hashed: a file written in between (an
        editor saving during the run) must not store its new report under the old key."""
        return all(self.digests.get(path) == digest_of(data) for path, data in sources.items())

    def put(self, key: str, report: Report, reads: Mapping[str, str | None]) -> None:
        self.cache.put_memo(key, (report, dict(reads)))

    def save(self) -> None:
        self.manifest.save()


def _describe(planned: PlannedFile, digest: str) -> str:
    fields: Iterable[object] = (
        planned.display,
        planned.module,
        planned.is_test,
        planned.aliases,
        planned.path_context,
        digest,
    )
    return "\0".join(map(str, fields))
