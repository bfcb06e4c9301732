"""Find the Python files to check: default excludes, user excludes and .gitignore."""

from __future__ import annotations

import fnmatch
import functools
import os
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

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
    and a deeper file overrides the ones above it. Folders are real paths, as strings."""

    specs: list[tuple[str, pathspec.GitIgnoreSpec]] = field(default_factory=list)
    loaded: set[str] = field(default_factory=set)

    def load(self, directory: str) -> None:
        if directory in self.loaded:
            return
        self.loaded.add(directory)
        try:
            path = os.path.join(directory, ".gitignore")
            with open(path, encoding="utf-8", errors="replace") as handle:
                lines = handle.read()
        except OSError:
            return
        self.specs.append((directory, pathspec.GitIgnoreSpec.from_lines(lines.splitlines())))
        # Deeper folders last: their verdict is the one that stands.
        self.specs.sort(key=lambda item: _depth(item[0]))

    def ignored(self, real: str, is_dir: bool) -> bool:
        verdict = False
        for base, spec in self.specs:
            relative = _relative(real, base)
            if relative is None:
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
        return bool(self.patterns) and self.matches(path.name, str(resolved(path)), str(path))

    def excluded_at(self, name: str, real: str, spelled: str) -> bool:
        """:meth:`excluded` for a walked path: its name, real path and path as spelled."""
        if excluded_by_name(name):
            return True
        return bool(self.patterns) and self.matches(name, real, spelled)

    def matches(self, name: str, real: str, spelled: str) -> bool:
        """A user pattern matches the name or the path below the root (else as spelled)."""
        relative = _relative(real, str(self.root))
        if relative is None:
            relative = Path(spelled).as_posix()
        for pattern in self.patterns:
            pattern = pattern.rstrip("/")
            # Directories are pruned during the walk, so a match on the folder covers its files.
            if fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(relative, pattern):
                return True
        return False

    def excluded_with_parents(self, path: Path) -> bool:
        """For --force-exclude: a file is excluded when it or any folder above it is."""
        absolute = resolved(path)
        chain = [absolute, *(p for p in absolute.parents if self.root in p.parents)]
        return any(self.excluded(p) for p in chain)


def parts_below(path: str, base: str) -> tuple[str, ...] | None:
    """`Path(path).relative_to(base).parts` for normalised absolute paths, without pathlib
    (a tenth of a warm run was building and comparing Path objects); None when not below."""
    if path == base:
        return ()
    prefix = base if base.endswith(os.sep) else base + os.sep
    if not path.startswith(prefix):
        return None
    return tuple(path[len(prefix) :].split(os.sep))


def _relative(path: str, base: str) -> str | None:
    """`Path(path).relative_to(base).as_posix()`, or None when `path` is not below `base`."""
    parts = parts_below(path, base)
    if parts is None:
        return None
    return "/".join(parts) if parts else "."


def _depth(real: str) -> int:
    """`len(Path(real).parts)` for a normalised absolute path."""
    return len(real.rstrip(os.sep).split(os.sep))


def stem(name: str) -> str:
    """`Path(name).stem`: the name without its last suffix (`.hidden` and `x.` keep theirs)."""
    dot = name.rfind(".")
    return name[:dot] if 0 < dot < len(name) - 1 else name


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


class Found(NamedTuple):
    """A path discovery found: as the rest of the code spells it (`str(Path(...))`), its real
    path (symlinks resolved), and whether it is a folder that could not be listed."""

    path: str
    real: str
    unlistable: bool = False

    @property
    def name(self) -> str:
        return self.path.rpartition(os.sep)[2]


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
    _in_test_folder_at.cache_clear()
    _folder.cache_clear()


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
) -> Iterator[tuple[Found, Path]]:
    """Yield (file, the path it was found under), sorted per directory, without duplicates."""
    seen: set[str] = set()
    for given in paths:
        if not os.path.lexists(given):
            raise DiscoveryError(f"{given}: no such file or directory")
        # A symlink loop or a dangling link is a file that cannot be read: reported as such.
        if not given.is_dir():
            if force_exclude and excludes.excluded_with_parents(given):
                continue
            real = str(resolved(given))
            if real not in seen:
                seen.add(real)
                yield Found(str(given), real), given.parent
            continue
        for found in _scan(given, excludes, respect_gitignore, seen):
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
    seen: set[str] = set()
    for given in paths:
        if given.is_file():
            if is_project_file(given.name):
                yield given
            continue
        if given.is_dir():
            for found in _scan(given, excludes, respect_gitignore, seen, is_project_file):
                yield Path(found.path)


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


def _scan(
    top: Path,
    excludes: Excludes,
    respect_gitignore: bool,
    seen: set[str],
    wanted: Callable[[str], bool] = _is_python,
) -> Iterator[Found]:
    """The wanted files below `top`, depth first: a folder's files sorted by name, then its
    sub-folders in name order. Symlinked folders are not entered (as `os.walk` does not);
    symlinked files are, each real file once.

    On strings and `os.scandir`: an entry's kind comes from the listing (no `stat` per file),
    a file's real path is its real folder plus its name unless it is a symlink, and no Path is
    built per file (pathlib was most of a warm run).
    """
    gitignore = GitIgnore()
    real_top = resolved(top)
    if respect_gitignore:
        git_root = _git_root(real_top)
        if git_root is not None:
            for directory in reversed([real_top, *real_top.parents]):
                if directory == git_root or git_root in directory.parents:
                    gitignore.load(str(directory))
    unreadable: list[OSError] = []
    spelled_top = str(top)
    # (folder as spelled, its real path); popped last first, so pushed in reverse name order.
    stack = [(spelled_top, str(real_top))]
    while stack:
        spelled, real = stack.pop()
        try:
            with os.scandir(spelled) as listing:
                entries = list(listing)
        except OSError as error:
            unreadable.append(error)
            continue
        prefix = "" if spelled == "." else spelled if spelled.endswith(os.sep) else spelled + os.sep
        real_prefix = real if real.endswith(os.sep) else real + os.sep
        folders: list[str] = []
        files: list[os.DirEntry[str]] = []
        for entry in entries:
            if _is_folder(entry):
                if not _is_link(entry):
                    folders.append(entry.name)
            else:
                files.append(entry)
        if respect_gitignore and any(entry.name == ".gitignore" for entry in files):
            gitignore.load(real)
        for entry in sorted(files, key=_entry_name):
            name = entry.name
            # The name alone decides for most files.
            if not wanted(name) or excluded_by_name(name):
                continue
            child = prefix + name
            # A symlink resolves where it points (a loop stays itself, to be reported).
            child_real = str(resolved(Path(child))) if _is_link(entry) else real_prefix + name
            if excludes.patterns and excludes.matches(name, child_real, child):
                continue
            if respect_gitignore and gitignore.ignored(child_real, False):
                continue
            if child_real not in seen:
                seen.add(child_real)
                yield Found(child, child_real)
        kept = []
        for name in sorted(folders):
            child, child_real = prefix + name, real_prefix + name
            if excludes.excluded_at(name, child_real, child):
                continue
            if respect_gitignore and gitignore.ignored(child_real, True):
                continue
            kept.append((child, child_real))
        stack.extend(reversed(kept))
    # A folder that cannot be listed (chmod 000) is yielded, to be reported as DPL002, not
    # skipped in silence: its files would otherwise vanish from a "clean" run.
    for failure in unreadable if wanted is _is_python else []:
        if failure.filename is None:
            continue
        folder = Path(failure.filename)
        real = str(resolved(folder))
        if real not in seen:
            seen.add(real)
            yield Found(str(folder), real, unlistable=True)


def _is_folder(entry: os.DirEntry[str]) -> bool:
    """Follows a symlink, as `os.walk` does: a loop or a dangling link is a file."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _is_link(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_symlink()
    except OSError:
        return False


def _entry_name(entry: os.DirEntry[str]) -> str:
    return entry.name


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
    return module_names_at(str(resolved(path)), path.name)


def module_names_at(real: str, spelled_name: str) -> tuple[str, tuple[str, ...]]:
    """:func:`module_names` of a file by its real path and the name it is spelled with."""
    folder_text, _, file_name = real.rpartition(os.sep)
    folder = _folder(folder_text or os.sep)
    name_stem = stem(file_name)
    packages, _ = _package_chain(folder)
    name = ".".join([*packages, name_stem] if name_stem != "__init__" else packages) or name_stem
    declared = _declared_name(folder, name_stem)
    # A package-dir name wins; the folders' own name stays an alias (`source.db` for `mypkg.db`).
    aliases: list[str] = [name] if declared not in (None, name) else []
    climbs = name.count(".") + (stem(spelled_name) == "__init__")
    alias = name
    for above in _alias_chain(_ancestor(folder, climbs)):
        alias = f"{above}.{alias}"
        aliases.append(alias)
    return declared or name, tuple(a for a in aliases if a != declared)


@functools.cache
def _folder(real: str) -> Path:
    """One Path per real folder: the caches below are keyed by it, and a Path hashes once."""
    return Path(real)


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
) -> Iterator[tuple[Found, Path]]:
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
    seen: set[str] = set()
    for root in roots:
        for found in _scan(root, excludes, respect_gitignore, seen):
            yield found, root


TEST_DIRECTORIES = {"tests", "test", "testing"}


def is_test_file(path: Path, base: Path | None = None) -> bool:
    """Tests and conftest open connections per test on purpose; per-call rules skip them.

    Folders count only below the path the user named, so a project that happens to live
    under some `tests/` folder is still checked.
    """
    if base is None:
        return _test_name(path.name) or _in_test_folder(path.parent)
    return is_test_at(str(path), str(resolved(path)), str(resolved(base)))


def is_test_at(spelled: str, real: str, real_base: str) -> bool:
    """:func:`is_test_file` of a file as spelled, by its real path and the base's."""
    folder, _, name = spelled.rpartition(os.sep)
    if _test_name(name):
        return True
    return _in_test_folder_at(real.rpartition(os.sep)[0] or os.sep, real_base, folder)


def _test_name(name: str) -> bool:
    return name == "conftest.py" or name.startswith("test_") or name.endswith("_test.py")


@functools.cache
def _in_test_folder_at(folder: str, base: str, given: str) -> bool:
    """`folder` below `base` is a test folder; when it is not below, the file's folder as given."""
    parts = parts_below(folder, base)
    if parts is None:
        parts = tuple(given.split(os.sep))
    return any(part in TEST_DIRECTORIES for part in parts)


@functools.cache
def _in_test_folder(folder: Path) -> bool:
    return any(part in TEST_DIRECTORIES for part in folder.parts)
