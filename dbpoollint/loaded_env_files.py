"""Env files a project loads by name, wherever they are: `load_dotenv("config/supabase")`,
`environ.Env.read_env(...)`, pydantic `env_file=`, compose `env_file:`, `--env-file` in a Procfile
or Dockerfile. Each applies to the folder holding both the file and whoever loads it."""

from __future__ import annotations

import os
import re
from pathlib import PurePath

from dbpoollint import disk_reads
from dbpoollint.checks.base import Project
from dbpoollint.migration_commands import normalise
from dbpoollint.project_files import ProjectConfig

_ENV_FILE_FLAG = re.compile(r"--env-file[= ]\s*(?P<name>[^\s'\"]+)")


def loaded_env_files(project: Project, config: ProjectConfig) -> list[tuple[str, str]]:
    """(path, scope) of the env files the project names, each relative to whoever names it;
    the scope is the folder holding both the file and whoever names it."""
    found: list[tuple[str, str]] = []

    def add(path: str, loader: str) -> None:
        try:
            scope = os.path.commonpath([PurePath(path).parent, PurePath(loader).parent])
        except ValueError:  # one absolute, one relative
            scope = str(PurePath(path).parent)
        found.append((path, str(PurePath(scope or "."))))

    for summary in project.summaries:
        folder = PurePath(summary.path).parent
        for name in summary.urls.env_files:
            # python-dotenv reads a relative name from the working directory: the module's
            # folder or one above it (the project root); the nearest that has the file wins.
            candidates = [normalise(str(p / name)) for p in (folder, *folder.parents)]
            existing = [c for c in candidates if c in project.files or disk_reads.is_file(c)]
            for path in existing[:1]:
                add(path, summary.path)
    for compose in config.compose:
        folder = PurePath(compose.path).parent
        for service in compose.services:
            for name, _ in service.env_files:
                add(normalise(str(folder / name)), compose.path)
    for path, text in project.files.items():
        if PurePath(path).name.startswith(("Procfile", "Dockerfile")):
            folder = PurePath(path).parent
            for match in _ENV_FILE_FLAG.finditer(text):
                add(normalise(str(folder / match.group("name"))), path)
    return sorted(set(found))


def read_disk(path: str) -> str | None:
    # Over a megabyte it is not an env file.
    return disk_reads.read_text(path, limit=1_000_000)
