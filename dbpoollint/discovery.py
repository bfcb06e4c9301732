"""Find the Python files to check: default excludes, user excludes and .gitignore."""

from __future__ import annotations

import fnmatch
import functools
import os
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

# The same set ruff skips by default: tool caches, virtualenvs, build output, vendored deps.
DEFAULT_EXCLUDES = (
    ".bzr",
    ".direnv",
    ".eggs",
    ".git",
    ".git-rewrite",
    ".hg",
    ".ipynb_checkpoints",
    ".mypy_cache",
    ".nox",
    ".pants.d",
    ".pyenv",
    ".pytest_cache",
    ".pytype",
    ".ruff_cache",
    ".svn",
    ".tox",
    ".venv",
    ".vscode",
    "__pypackages__",
    "__pycache__",
    "_build",
    "buck-out",
    "build",
    "dist",
    "node_modules",
    "site-packages",
    "venv",
)
PYTHON_SUFFIXES = (".py", ".pyi")


class DiscoveryError(Exception):
    """A path the user named does not exist."""


@dataclass
class GitIgnore:
    """`.gitignore` files as git reads them (pathspec's gitwildmatch): each file's patterns are
    relative to its folder, the last matching pattern of a file wins (so `!keep.py` re-includes),
    and a deeper file overrides the ones above it."""

    specs: list[tuple[Path, pathspec.GitIgnoreSpec]] = field(default_factory=list)
    loaded: set[Path] = field(default_factory=set)

    def load(self, directory: Path) -> None:
        if directory in self.loaded:
            return
        self.loaded.add(directory)
        try:
            lines = (directory / ".gitignore").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return
        self.specs.append((directory, pathspec.GitIgnoreSpec.from_lines(lines.splitlines())))
        # Deeper folders last: their verdict is the one that stands.
        self.specs.sort(key=lambda item: len(item[0].parts))

    def ignored(self, path: Path, is_dir: bool) -> bool:
        verdict = False
        for base, spec in self.specs:
            try:
                relative = path.relative_to(base).as_posix()
            except ValueError:
                continue
            result = spec.check_file(relative + "/" if is_dir else relative)
            if result.include is not None:
                verdict = result.include
        return verdict


@dataclass(frozen=True)
class Excludes:
    patterns: Sequence[str]
    root: Path

    def excluded(self, path: Path) -> bool:
        if excluded_by_name(path.name):
            return True
        if not self.patterns:
            return False
        try:
            relative = resolved(path).relative_to(self.root).as_posix()
        except ValueError:
            relative = path.as_posix()
        for pattern in self.patterns:
            pattern = pattern.rstrip("/")
            # Directories are pruned during the walk, so a match on the folder covers its files.
            if fnmatch.fnmatchcase(path.name, pattern) or fnmatch.fnmatchcase(relative, pattern):
                return True
        return False

    def excluded_with_parents(self, path: Path) -> bool:
        """For --force-exclude: a file is excluded when it or any folder above it is."""
        absolute = resolved(path)
        chain = [absolute, *(p for p in absolute.parents if self.root in p.parents)]
        return any(self.excluded(p) for p in chain)


def excluded_by_name(name: str) -> bool:
    return name in DEFAULT_EXCLUDES or _template_name(name)


def _template_name(name: str) -> bool:
    """`{{cookiecutter.project}}/`: a project template (cookiecutter, copier), not code that
    runs or parses; its files are Jinja until rendered."""
    return "{{" in name and "}}" in name


def resolved(path: Path) -> Path:
    """`path.resolve()`, except that a symlink loop stays itself (to be reported, not a crash).

    Remembered for the run: discovery, module names and aliases resolve every file and folder
    of the project several times, and each `resolve()` costs a system call per path part. A
    relative path is remembered with the working directory, read once per run.
    """
    key = path if path.is_absolute() else (path, _cwd())
    found = _RESOLVED.get(key)
    if found is None:
        try:
            found = path.resolve()
        except (RuntimeError, OSError):  # RuntimeError: "Symlink loop from ..."
            found = path.absolute()
        _RESOLVED[key] = found
    return found


def _resolved_in(real_folder: Path, child: Path, spelled: str, name: str) -> Path:
    """A walked file's real path: its real folder plus its name, unless it is a symlink (one
    `lstat` instead of one per path part). `spelled`: the child as a string, cheaper to stat."""
    if os.path.islink(spelled):
        return resolved(child)
    real = real_folder / name
    _RESOLVED[child if child.is_absolute() else (child, _cwd())] = real
    return real


_RESOLVED: dict[Path | tuple[Path, str], Path] = {}
# The working directory of this run: `os.getcwd()` per relative path was a fifth of discovery.
_CWD: list[str] = []


def _cwd() -> str:
    if not _CWD:
        _CWD.append(os.getcwd())
    return _CWD[0]


@functools.cache
def _exists(path: Path) -> bool:
    return path.exists()


def forget_file_system() -> None:
    """Start a run with nothing remembered about the file system (tests run many in one process)."""
    _RESOLVED.clear()
    _CWD.clear()
    _exists.cache_clear()
    _package_dirs.cache_clear()
    _declared_roots.cache_clear()
    _is_root.cache_clear()
    _package_chain.cache_clear()
    _declared_folder.cache_clear()
    _alias_chain.cache_clear()
    _ancestor.cache_clear()
    _in_test_folder.cache_clear()


def _git_root(start: Path) -> Path | None:
    for directory in [start, *start.parents]:
        if (directory / ".git").exists():
            return directory
    return None


def discover(
    paths: Sequence[Path],
    excludes: Excludes,
    respect_gitignore: bool = True,
    force_exclude: bool = False,
) -> Iterator[tuple[Path, Path]]:
    """Yield (file, the path it was found under), sorted per directory, without duplicates."""
    seen: set[Path] = set()
    for given in paths:
        if not os.path.lexists(given):
            raise DiscoveryError(f"{given}: no such file or directory")
        # A symlink loop or a dangling link is a file that cannot be read: reported as such.
        if not given.is_dir():
            if force_exclude and excludes.excluded_with_parents(given):
                continue
            if resolved(given) not in seen:
                seen.add(resolved(given))
                yield given, given.parent
            continue
        for found in _walk(given, excludes, respect_gitignore, seen):
            yield found, given


def _is_python(name: str) -> bool:
    return name.endswith(PYTHON_SUFFIXES)


# Files outside Python that say how the project connects and runs: version pins, URLs,
# migrations, process managers. Rules read them from `Project.files`.
PROJECT_FILE_PATTERNS = (
    "pyproject.toml",
    "requirements*.txt",
    "requirements*.in",
    "setup.cfg",
    "Pipfile.lock",
    "poetry.lock",
    "uv.lock",
    "alembic.ini",
    ".env",
    ".env.*",
    "*.env",
    "docker-compose*.yml",
    "docker-compose*.yaml",
    "compose.yml",
    "compose.yaml",
    "Procfile",
    "Dockerfile",
    "Dockerfile.*",
    "serverless.yml",
    "serverless.yaml",
    "template.yaml",
    "template.yml",
    "env.*",
    "pgbouncer*.ini",
    "*pgbouncer*.ini",
    "Procfile.*",
    "Makefile",
    "makefile",
    "GNUmakefile",
    "*.mk",
    "*.sh",
    "*.bash",
    # The process model (DPL105, DPL501): Kubernetes manifests, Helm values, server limits.
    # YAML files are parsed only when they look like manifests or values.
    "*.yaml",
    "*.yml",
    "postgresql.conf",
)


def is_project_file(name: str) -> bool:
    if _is_python(name):
        # gunicorn reads its config file as Python (DPL105, DPL501); alembic's `env.py` is code,
        # not an `env.*` file.
        return fnmatch.fnmatchcase(name, "gunicorn*.py")
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in PROJECT_FILE_PATTERNS)


def discover_project_files(
    paths: Sequence[Path], excludes: Excludes, respect_gitignore: bool = True
) -> Iterator[Path]:
    """Config files under the given directories (and given files that are config files)."""
    seen: set[Path] = set()
    for given in paths:
        if given.is_file():
            if is_project_file(given.name):
                yield given
            continue
        if given.is_dir():
            yield from _walk(given, excludes, respect_gitignore, seen, is_project_file)


PIN_FILE_PATTERNS = (
    "pyproject.toml",
    "requirements*.txt",
    "uv.lock",
    "poetry.lock",
    "Pipfile.lock",
)


def pins_above(targets: Sequence[Path], known: set[Path]) -> list[Path]:
    """Version pins in the folders above the checked paths, up to the repository root.

    `dbpoollint check src/` should still know the versions the project's root pins.
    """
    found: list[Path] = []
    seen = {resolved(p) for p in known}
    for target in targets:
        start = resolved(target)
        start = start if start.is_dir() else start.parent
        for directory in [*start.parents][: _depth_to_root(start)]:
            for pattern in PIN_FILE_PATTERNS:
                for candidate in sorted(directory.glob(pattern)):
                    if candidate.is_file() and resolved(candidate) not in seen:
                        seen.add(resolved(candidate))
                        found.append(candidate)
    return found


def _depth_to_root(start: Path) -> int:
    """How many parents to search: up to the git root, or three folders without one."""
    for depth, directory in enumerate([start, *start.parents]):
        if (directory / ".git").exists():
            return depth
    return 3


def _walk(
    top: Path,
    excludes: Excludes,
    respect_gitignore: bool,
    seen: set[Path],
    wanted: Callable[[str], bool] = _is_python,
) -> Iterator[Path]:
    gitignore = GitIgnore()
    if respect_gitignore:
        absolute = resolved(top)
        git_root = _git_root(absolute)
        if git_root is not None:
            for directory in reversed([absolute, *absolute.parents]):
                if directory == git_root or git_root in directory.parents:
                    gitignore.load(directory)
    unreadable: list[OSError] = []
    for walked, dirnames, filenames in os.walk(top, onerror=unreadable.append):
        current = Path(walked)
        if respect_gitignore:
            gitignore.load(resolved(current))
        kept = []
        for name in sorted(dirnames):
            child = current / name
            if excludes.excluded(child):
                continue
            if respect_gitignore and gitignore.ignored(resolved(child), True):
                continue
            kept.append(name)
        dirnames[:] = kept
        real_folder = resolved(current)
        for name in sorted(filenames):
            # The name alone decides for most files: no path is built for them.
            if not wanted(name) or excluded_by_name(name):
                continue
            child = current / name
            if excludes.patterns and excludes.excluded(child):
                continue
            real = _resolved_in(real_folder, child, os.path.join(walked, name), name)
            if respect_gitignore and gitignore.ignored(real, False):
                continue
            if real not in seen:
                seen.add(real)
                yield child
    # A folder that cannot be listed (chmod 000) is yielded, to be reported as DPL002, not
    # skipped in silence: its files would otherwise vanish from a "clean" run.
    for error in unreadable if wanted is _is_python else []:
        if error.filename is not None and resolved(Path(error.filename)) not in seen:
            seen.add(resolved(Path(error.filename)))
            yield Path(error.filename)


def module_name(path: Path) -> str:
    """The dotted module name: as `[tool.setuptools] package-dir` maps the file's folder when
    the nearest pyproject.toml says so, else walking up through packages (folders with
    __init__.py)."""
    return module_names(path)[0]


def module_aliases(path: Path) -> tuple[str, ...]:
    """Other names the module may be imported as, up to the folder holding a root marker.

    `backend/app/db.py` without `__init__.py` files is `db` to :func:`module_name` (run from its
    own folder) but `app.db` when `backend/` is on `sys.path`, and `backend.app.db` from the
    repository's root: the resolver knows it by all three.
    """
    return module_names(path)[1]


def module_names(path: Path) -> tuple[str, tuple[str, ...]]:
    """:func:`module_name` and :func:`module_aliases` at once, from one look at the folder."""
    absolute = resolved(path)
    folder, stem = absolute.parent, absolute.stem
    packages, _ = _package_chain(folder)
    name = ".".join([*packages, stem] if stem != "__init__" else packages) or stem
    declared = _declared_name(folder, stem)
    # A package-dir name wins; the folders' own name stays an alias (`source.db` for `mypkg.db`).
    aliases: list[str] = [name] if declared not in (None, name) else []
    climbs = name.count(".") + (path.stem == "__init__")
    alias = name
    for above in _alias_chain(_ancestor(folder, climbs)):
        alias = f"{above}.{alias}"
        aliases.append(alias)
    return declared or name, tuple(a for a in aliases if a != declared)


@functools.cache
def _ancestor(directory: Path, levels: int) -> Path:
    return directory if levels == 0 else _ancestor(directory.parent, levels - 1)


@functools.cache
def _package_chain(directory: Path) -> tuple[tuple[str, ...], Path]:
    """The names of the packages (folders with `__init__.py`) holding `directory`, outermost
    first, and the first folder above them that is no package."""
    if _exists(directory / "__init__.py") and directory.parent != directory:
        names, top = _package_chain(directory.parent)
        return (*names, directory.name), top
    return (), directory


# A folder above a module that may still be on `sys.path`: a namespace package (PEP 420, no
# `__init__.py`) or a service folder (`backend/` holding `app/`) up to the project's root.
MAX_ALIAS_LEVELS = 6
# A folder holding one of these is where a project (and its imports) starts.
ROOT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", "dbpoollint.toml", ".git")


@functools.cache
def _alias_chain(directory: Path, levels: int = MAX_ALIAS_LEVELS) -> tuple[str, ...]:
    """The names of `directory` and the folders above it that can prefix an alias, nearest
    first: up to a root marker, and not past a name that is no identifier."""
    if levels == 0 or _is_root(directory) or directory.parent == directory or not directory.name:
        return ()
    if not directory.name.isidentifier():
        return ()
    return (directory.name, *_alias_chain(directory.parent, levels - 1))


def _declared_name(folder: Path, stem: str) -> str | None:
    """The name `[tool.setuptools] package-dir` gives the file, from the nearest pyproject.toml.

    `package-dir = {"" = "lib"}` makes `lib/mypkg/db.py` `mypkg.db`, with or without
    `__init__.py` files; `{"mypkg" = "source"}` makes `source/db.py` `mypkg.db`. The deepest
    folder that holds the file decides. None when no mapping covers it, or a folder on the way
    is no identifier.
    """
    mapped = _declared_folder(folder)
    if mapped is None:
        return None
    package, folders = mapped
    parts = [*folders, stem]
    if parts[-1] == "__init__":
        parts.pop()
    if not all(part.isidentifier() for part in parts):
        return None
    return ".".join([*([package] if package else []), *parts]) or None


@functools.cache
def _declared_folder(directory: Path) -> tuple[str, tuple[str, ...]] | None:
    """The package name and the folders below its mapped folder, for the deepest package-dir
    mapping holding `directory`; None when none does."""
    for folder, package in _declared_roots(directory):
        if directory == folder or folder in directory.parents:
            return package, directory.relative_to(folder).parts
    return None


@functools.cache
def _declared_roots(directory: Path) -> tuple[tuple[Path, str], ...]:
    """The package-dir mappings that apply in `directory`: the nearest pyproject.toml's, as
    (folder, package name), deepest folder first. None above a root marker without one."""
    if _exists(directory / "pyproject.toml"):
        return _package_dirs(directory / "pyproject.toml")
    if _is_root(directory) or directory.parent == directory:
        return ()
    return _declared_roots(directory.parent)


@functools.cache
def _package_dirs(pyproject: Path) -> tuple[tuple[Path, str], ...]:
    try:
        table = tomllib.loads(pyproject.read_text(encoding="utf-8", errors="replace"))
    except (OSError, tomllib.TOMLDecodeError):
        return ()  # a broken pyproject.toml is the configuration loader's to report
    mapping = table.get("tool", {}).get("setuptools", {}).get("package-dir", {})
    if not isinstance(mapping, dict):
        return ()
    roots = [
        (resolved(pyproject.parent / folder), package)
        for package, folder in mapping.items()
        if isinstance(package, str)
        and isinstance(folder, str)
        and all(part.isidentifier() for part in package.split(".") if package)
    ]
    return tuple(sorted(roots, key=lambda root: len(root[0].parts), reverse=True))


@functools.cache
def _is_root(directory: Path) -> bool:
    return any(_exists(directory / marker) for marker in ROOT_MARKERS)


def project_root(target: Path) -> Path:
    """The nearest folder at or above `target` with a root marker (pyproject.toml, .git, ...)."""
    start = resolved(target)
    start = start if start.is_dir() else start.parent
    for directory in [start, *start.parents]:
        if _is_root(directory):
            return directory
    return start


def project_modules(
    targets: Sequence[Path],
    excludes: Excludes,
    respect_gitignore: bool = True,
) -> Iterator[tuple[Path, Path]]:
    """The Python files of the projects the targets belong to, as (file, project root).

    Checking one file or folder still needs the facts of the rest of the project (who builds
    the client a view uses, which lifespan closes it). A target the configuration excludes is
    not part of the project: checking it explicitly checks it alone.
    """
    roots: list[Path] = []
    for target in targets:
        if not target.exists() or excludes.excluded_with_parents(target):
            continue
        root = project_root(target)
        if root not in roots and not any(r in root.parents for r in roots):
            roots = [r for r in roots if root not in r.parents] + [root]
    seen: set[Path] = set()
    for root in roots:
        for found in _walk(root, excludes, respect_gitignore, seen):
            yield found, root


TEST_DIRECTORIES = {"tests", "test", "testing"}


def is_test_file(path: Path, base: Path | None = None) -> bool:
    """Tests and conftest open connections per test on purpose; per-call rules skip them.

    Folders count only below the path the user named, so a project that happens to live
    under some `tests/` folder is still checked.
    """
    name = path.name
    if name == "conftest.py" or name.startswith("test_") or name.endswith("_test.py"):
        return True
    if base is None:
        return _in_test_folder(path.parent)
    return _in_test_folder(resolved(path).parent, resolved(base), path.parent)


@functools.cache
def _in_test_folder(folder: Path, base: Path | None = None, given: Path | None = None) -> bool:
    """`folder` (below `base` when given, else the file's folder as given) is a test folder."""
    if base is not None:
        try:
            folder = folder.relative_to(base)
        except ValueError:
            folder = given if given is not None else folder
    return any(part in TEST_DIRECTORIES for part in folder.parts)
