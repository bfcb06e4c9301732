"""Which version of a library the project runs, read from its pins with `packaging`.

Pins come from the project files the engine collected (``Project.files``): lock files
(``uv.lock``, ``poetry.lock``, ``Pipfile.lock`` give the exact version), PEP 508 requirements in
``requirements*.txt`` (following ``-r`` includes, joining ``\\`` continuations, skipping
``--hash`` options) and ``pyproject.toml`` (PEP 621 dependencies, optional dependencies,
dependency groups and Poetry's tables, whose ``^``/``~`` constraints are turned into PEP 440).
A specifier set stands for the newest version it allows: ``redis<8`` is read as "just below 8",
``redis>=5`` as "the newest". A distribution and its aliases are one package
(``psycopg2-binary`` is psycopg2; ``redis[hiredis]`` is redis).

In a monorepo each module takes the pins of its nearest project (the closest folder above it
with pin files); a folder further up decides only what the nearer one leaves open.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import total_ordering
from pathlib import Path, PurePath
from typing import Any

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion
from packaging.version import Version as Pep440Version

from dbpoollint import disk_reads

# Distributions that install the same importable package as another, whose defaults apply.
# (psycopg2's and psycopg's binary wheels; mysql-connector's old distribution name.)
DISTRIBUTION_ALIASES: dict[str, str] = {
    "psycopg2-binary": "psycopg2",
    "psycopg-binary": "psycopg",
    "psycopg-c": "psycopg",
    "mysql-connector": "mysql-connector-python",
}


def normalise(name: str) -> str:
    """PEP 503 name normalisation plus the alias table: `Psycopg2_Binary` is psycopg2."""
    canonical = str(canonicalize_name(name))
    return DISTRIBUTION_ALIASES.get(canonical, canonical)


@total_ordering
@dataclass(frozen=True)
class Version:
    """A PEP 440 version; `below` marks "just below this one" (the newest `<8` allows)."""

    value: Pep440Version
    below: bool = False

    @property
    def key(self) -> tuple[Pep440Version, int]:
        return self.value, -1 if self.below else 0

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.key < other.key

    def __str__(self) -> str:
        return f"<{self.value}" if self.below else str(self.value)


def parse_version(text: str) -> Version | None:
    try:
        return Version(Pep440Version(text.strip()))
    except InvalidVersion:
        return None


def in_range(version: Version | None, since: str, until: str) -> bool:
    """`since <= version < until`; an unknown version (no pin) means the newest."""
    if version is None:
        return not until
    low = parse_version(since) if since else None
    high = parse_version(until) if until else None
    return (low is None or low <= version) and (high is None or version < high)


@dataclass(frozen=True)
class Pin:
    package: str
    spec: str  # as written: "==7.4.1", ">=5,<8", "==7.4.1" (a lock file)
    source: str  # the file it came from
    version: Version | None  # the newest version the pin allows; None: any
    written: str = ""  # the distribution as written, when it is an alias: "psycopg2-binary"

    def describe(self) -> str:
        return f"{self.written or self.package}{self.spec} in {PurePath(self.source).name}"

    def allows(self, version: Version) -> bool:
        try:
            return SpecifierSet(_pep440(self.spec)).contains(version.value, prereleases=True)
        except InvalidSpecifier:
            return False


def _bump(version: Pep440Version, index: int) -> Version:
    parts = [*version.release[: index + 1]]
    parts += [0] * (index + 1 - len(parts))
    parts[index] += 1
    return Version(Pep440Version(".".join(map(str, parts))), below=True)


_POETRY = re.compile(r"^(\^|~(?!=))\s*(\S+)$")


def _pep440(spec: str) -> str:
    """Poetry's `^1.2` / `~1.2` / bare `1.2` as PEP 440 (`>=1.2,<2` / `>=1.2,<1.3` / `==1.2`)."""
    clauses = []
    for clause in re.split(r"[,\s]+(?=[<>=!~^0-9])", spec.strip()):
        clause = clause.strip()
        match = _POETRY.match(clause)
        if match is None:
            clauses.append(f"=={clause}" if clause[:1].isdigit() else clause)
            continue
        try:
            version = Pep440Version(match.group(2))
        except InvalidVersion:
            clauses.append(clause)
            continue
        if match.group(1) == "^":  # up to the next change of the first non-zero part
            index = next((i for i, p in enumerate(version.release) if p), 0)
        else:  # ~1.2 -> <1.3, ~1 -> <2
            index = min(1, len(version.release) - 1)
        clauses += [f">={version}", f"<{_bump(version, index).value}"]
    return ",".join(c for c in clauses if c)


def newest_allowed(spec: str) -> Version | None:
    """The newest version a specifier set allows, or None when it has no upper bound."""
    if "||" in spec:  # Poetry alternatives: the newest of them
        options = [newest_allowed(part) for part in spec.split("||")]
        return None if None in options else max(v for v in options if v is not None)
    try:
        specifiers = SpecifierSet(_pep440(spec))
    except InvalidSpecifier:
        return None
    best: Version | None = None
    for specifier in specifiers:
        operator, text = specifier.operator, specifier.version
        try:
            version = Pep440Version(text.removesuffix(".*"))
        except InvalidVersion:
            continue
        bound: Version | None = None
        if operator in ("==", "===") and not text.endswith(".*"):
            return Version(version)
        if operator == "==":  # ==4.* -> below 5
            bound = _bump(version, len(version.release) - 1)
        elif operator == "<=":
            bound = Version(version)
        elif operator == "<":
            bound = Version(version, below=True)
        elif operator == "~=":  # ~=2.8.5 -> below 2.9; ~=2.8 -> below 3
            bound = _bump(version, max(len(version.release) - 2, 0))
        # `!=`, `>`, `>=` set no upper bound.
        if bound is not None and (best is None or bound < best):
            best = bound
    return best


# --- reading pins -----------------------------------------------------------------------------

# The markers of a requirement are judged in this interpreter's environment, no extra asked.
_ENVIRONMENT: dict[str, str] = {k: str(v) for k, v in default_environment().items()}
_ENVIRONMENT["extra"] = ""


def _parse_requirement(text: str) -> tuple[str, str, str] | None:
    """(package, spec, name as written) of a PEP 508 requirement whose marker can apply."""
    try:
        requirement = Requirement(text)
    except InvalidRequirement:
        return None
    if requirement.marker is not None:
        try:
            if not requirement.marker.evaluate(_ENVIRONMENT):
                return None
        except Exception:  # an unknown marker variable: keep the pin rather than guess
            pass
    spec = "" if requirement.url else str(requirement.specifier)
    written = str(canonicalize_name(requirement.name))
    package = normalise(requirement.name)
    return package, spec, (written if written != package else "")


def _requirement_lines(text: str) -> Iterable[str]:
    """Logical lines: `\\` continuations joined, comments and `--hash` options dropped."""
    logical = re.sub(r"\\\r?\n", " ", text)
    for raw in logical.splitlines():
        line = re.split(r"(?:^|\s)#", raw, maxsplit=1)[0].strip()
        line = re.split(r"\s--?[a-z]", " " + line, maxsplit=1)[0].strip() if line else ""
        if line or raw.strip().startswith("-"):
            yield line or raw.strip()


def _requirements(path: str, files: Mapping[str, str], seen: set[str]) -> Iterable[Pin]:
    if path in seen:
        return
    seen.add(path)
    text = files.get(path)
    if text is None:
        # `-r requirements/base.txt`: an include that discovery does not collect by name.
        text = disk_reads.read_text(path)
        if text is None:
            return
        text = text[:1_000_000]
    for line in _requirement_lines(text):
        include = re.match(r"^(?:-r|--requirement|-c|--constraint)\s*=?\s*(\S+)", line)
        if include:
            target = str(PurePath(path).parent / include.group(1))
            yield from _requirements(_find(target, files), files, seen)
            continue
        if line.startswith(("-", ".", "/")) or "://" in line.split("@", 1)[0]:
            continue  # options, local paths, bare URLs: no version to read
        found = _parse_requirement(line)
        if found is not None:
            package, spec, written = found
            yield Pin(package, spec, path, newest_allowed(spec), written)


def _find(target: str, files: Mapping[str, str]) -> str:
    wanted = PurePath(target)
    for path in files:
        if PurePath(path) == wanted or _normpath(path) == _normpath(target):
            return path
    return target


def _normpath(path: str) -> str:
    parts: list[str] = []
    for part in PurePath(path).parts:
        if part == ".." and parts and parts[-1] != "..":
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def _toml(text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return {}


def _pyproject(path: str, text: str) -> Iterable[Pin]:
    data = _toml(text)
    project = data.get("project", {})
    lists: list[Any] = [project.get("dependencies", [])]
    lists += list(project.get("optional-dependencies", {}).values())
    lists += list(data.get("dependency-groups", {}).values())
    for entries in lists:
        for entry in entries if isinstance(entries, list) else []:
            found = _parse_requirement(entry) if isinstance(entry, str) else None
            if found is not None:
                yield Pin(found[0], found[1], path, newest_allowed(found[1]), found[2])
    poetry = data.get("tool", {}).get("poetry", {})
    tables = [poetry.get("dependencies", {}), poetry.get("dev-dependencies", {})]
    tables += [g.get("dependencies", {}) for g in poetry.get("group", {}).values()]
    for table in tables:
        for name, value in table.items() if isinstance(table, dict) else []:
            spec = value.get("version", "") if isinstance(value, dict) else value
            if isinstance(spec, str) and name != "python":
                spec = "" if spec.strip() == "*" else spec.replace(" ", "")
                spec = f"=={spec}" if spec[:1].isdigit() else spec  # Poetry: bare is exact
                package = normalise(name)
                written = str(canonicalize_name(name))
                yield Pin(
                    package,
                    spec,
                    path,
                    newest_allowed(spec),
                    written if written != package else "",
                )


def _lock(path: str, text: str) -> Iterable[Pin]:
    name = PurePath(path).name
    if name == "Pipfile.lock":
        try:
            data = json.loads(text)
        except ValueError:
            return
        for section in ("default", "develop"):
            for package, info in (data.get(section) or {}).items():
                spec = info.get("version", "") if isinstance(info, dict) else ""
                if spec:
                    yield Pin(normalise(package), spec, path, newest_allowed(spec))
        return
    for package in _toml(text).get("package", []):
        if isinstance(package, dict) and "name" in package and "version" in package:
            version = str(package["version"])
            yield Pin(normalise(package["name"]), f"=={version}", path, parse_version(version))


LOCK_FILES = ("uv.lock", "poetry.lock", "Pipfile.lock")


def _is_requirements(path: str) -> bool:
    name = PurePath(path).name
    return bool(re.fullmatch(r"requirements.*\.(txt|in)", name)) or (
        name.endswith(".txt") and "requirements" in PurePath(path).parts
    )


def is_pin_file(path: str) -> bool:
    name = PurePath(path).name
    return name in LOCK_FILES or name == "pyproject.toml" or _is_requirements(path)


def read_pins(files: Mapping[str, str]) -> dict[str, Pin]:
    """package -> the pin that decides it: a lock file beats a requirements file beats pyproject."""
    ranked: dict[str, tuple[int, Pin]] = {}

    def offer(rank: int, pin: Pin) -> None:
        current = ranked.get(pin.package)
        if current is None or rank < current[0] or (rank == current[0] and not current[1].spec):
            ranked[pin.package] = (rank, pin)

    seen: set[str] = set()
    # Within a rank the pin file nearest to the code wins: a subproject's own pyproject over the
    # repository root's (whose dependencies may name the same package for other reasons).
    for path in sorted(files, key=lambda p: (-len(PurePath(p).parts), p)):
        name = PurePath(path).name
        if name in LOCK_FILES:
            for pin in _lock(path, files[path]):
                offer(0, pin)
        elif _is_requirements(path):
            for pin in _requirements(path, files, seen):
                offer(1 if name.endswith(".txt") else 2, pin)
        elif name == "pyproject.toml":
            for pin in _pyproject(path, files[path]):
                offer(3, pin)
    return {package: pin for package, (_, pin) in ranked.items()}


def _project_folder(path: str) -> Path:
    """The folder a pin file speaks for: `requirements/base.txt` is its parent's."""
    folder = Path(path).resolve().parent
    return folder.parent if folder.name == "requirements" else folder


@dataclass
class PinIndex:
    """Pins per project folder, so a module reads its nearest project's pins first."""

    by_folder: dict[Path, dict[str, Pin]] = field(default_factory=dict)

    @classmethod
    def build(cls, files: Mapping[str, str]) -> PinIndex:
        grouped: dict[Path, dict[str, str]] = {}
        for path, text in files.items():
            if is_pin_file(path):
                grouped.setdefault(_project_folder(path), {})[path] = text
        return cls({folder: read_pins(group) for folder, group in grouped.items()})

    def pin(self, package: str, module_path: str | None = None) -> Pin | None:
        """The nearest project's pin; a farther lock decides what the nearer pin leaves open
        (`redis>=5` in a member's pyproject, `redis 7.4.1` in the workspace's uv.lock)."""
        package = normalise(package)
        folders = sorted(self.by_folder, key=lambda f: len(f.parts), reverse=True)
        if module_path is not None:
            start = Path(module_path).resolve()
            folders = [f for f in folders if f == start or f in start.parents]
        found = [self.by_folder[f][package] for f in folders if package in self.by_folder[f]]
        if not found:
            return None
        nearest = found[0]
        if nearest.version is None:
            for farther in found[1:]:
                exact = farther.version is not None and not farther.version.below
                if (
                    exact
                    and farther.version
                    and (not nearest.spec or nearest.allows(farther.version))
                ):
                    return farther
        return nearest
