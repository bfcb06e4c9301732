"""Which version of a library the project runs: read from its pins, compared without `packaging`.

Pins come from the project files the engine collected (``Project.files``): lock files first
(``uv.lock``, ``poetry.lock``, ``Pipfile.lock`` give the exact version), then ``==`` / ranges in
``requirements*.txt`` (following ``-r`` includes) and ``pyproject.toml`` (PEP 621 dependencies,
optional dependencies, dependency groups and Poetry's tables). A range stands for the newest
version it allows: ``redis<8`` is read as "just below 8", ``redis>=5`` as "the newest".
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any


def normalise(name: str) -> str:
    """PEP 503 name normalisation: `Flask_SQLAlchemy` and `flask-sqlalchemy` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Version:
    """X.Y.Z (pre-releases sort before their release). `below` marks "just below this"."""

    parts: tuple[int, ...]
    pre: int = 0  # 0 for a release, -1 for a pre-release (a, b, rc, dev)
    below: bool = False

    @property
    def key(self) -> tuple[tuple[int, ...], int, int]:
        padded = (*self.parts, *(0,) * (4 - len(self.parts)))[:4]
        return padded, -1 if self.below else 0, self.pre

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.key < other.key

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.key <= other.key

    def __str__(self) -> str:
        text = ".".join(str(p) for p in self.parts)
        return f"<{text}" if self.below else text


_VERSION = re.compile(r"^\s*v?(\d+(?:\.\d+)*)(?:\.?(a|b|c|rc|alpha|beta|pre|dev)\.?\d*)?")


def parse_version(text: str) -> Version | None:
    match = _VERSION.match(text)
    if match is None:
        return None
    parts = tuple(int(p) for p in match.group(1).split("."))
    return Version(parts, -1 if match.group(2) else 0)


def in_range(version: Version | None, since: str, until: str) -> bool:
    """`since <= version < until`; an unknown version (no pin) means the newest."""
    if version is None:
        return not until
    low = parse_version(since) if since else None
    high = parse_version(until) if until else None
    return (low is None or low.key <= version.key) and (high is None or version.key < high.key)


@dataclass(frozen=True)
class Pin:
    package: str
    spec: str  # as written: "==7.4.1", ">=5,<8", "7.4.1" (a lock file)
    source: str  # the file it came from
    version: Version | None  # the newest version the pin allows; None: any

    def describe(self) -> str:
        return f"{self.package}{self.spec} in {PurePath(self.source).name}"


_CLAUSE = re.compile(r"(===|==|~=|!=|<=|>=|<|>|\^|~)\s*([0-9][0-9A-Za-z.*+!-]*)")


def newest_allowed(spec: str) -> Version | None:
    """The newest version a specifier allows, or None when it has no upper bound."""
    best: Version | None = None
    for operator, text in _CLAUSE.findall(spec):
        version = parse_version(text.replace(".*", ""))
        if version is None:
            continue
        bound: Version | None = None
        if operator in ("==", "===") and "*" not in text:
            return version
        if operator in ("==", "==="):  # ==4.* -> below 5
            bound = _bump(version, len(version.parts) - 1)
        elif operator == "<=":
            bound = version
        elif operator == "<":
            bound = Version(version.parts, version.pre, below=True)
        elif operator == "~=":
            bound = _bump(version, max(len(version.parts) - 2, 0))
        elif operator == "^":  # Poetry caret: up to the next change of the first non-zero part
            first = next((i for i, p in enumerate(version.parts) if p), 0)
            bound = _bump(version, first)
        elif operator == "~":  # Poetry tilde: ~1.2 -> <1.3, ~1 -> <2
            bound = _bump(version, min(1, len(version.parts) - 1))
        if bound is not None and (best is None or bound.key < best.key):
            best = bound
    if best is None and re.fullmatch(r"\s*[0-9][0-9A-Za-z.]*\s*", spec):
        return parse_version(spec)  # a bare version (Poetry `redis = "4.5.1"`, lock files)
    return best


def _bump(version: Version, index: int) -> Version:
    parts = [*version.parts[: index + 1]]
    parts[index] += 1
    return Version(tuple(parts), 0, below=True)


_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")


def _requirement(line: str) -> tuple[str, str] | None:
    line = line.split("#", 1)[0].split(";", 1)[0].strip()
    if not line or line.startswith(("-", "git+", "http:", "https:", "file:", ".")):
        return None
    match = _REQUIREMENT.match(line)
    if match is None:
        return None
    spec = match.group(3).strip().strip("()").replace(" ", "")
    if spec.startswith("@"):
        spec = ""
    return normalise(match.group(1)), spec


def _requirements(path: str, files: Mapping[str, str], seen: set[str]) -> Iterable[Pin]:
    if path in seen:
        return
    seen.add(path)
    text = files.get(path)
    if text is None:
        # `-r requirements/base.txt`: an include that discovery does not collect by name.
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")[:1_000_000]
        except OSError:
            return
    for raw in text.splitlines():
        line = raw.strip()
        include = re.match(r"^(?:-r|--requirement|-c|--constraint)\s*=?\s*(\S+)", line)
        if include:
            target = str(PurePath(path).parent / include.group(1))
            yield from _requirements(_find(target, files), files, seen)
            continue
        found = _requirement(line)
        if found is not None:
            name, spec = found
            yield Pin(name, spec, path, newest_allowed(spec))


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
            found = _requirement(entry) if isinstance(entry, str) else None
            if found is not None:
                yield Pin(found[0], found[1], path, newest_allowed(found[1]))
    poetry = data.get("tool", {}).get("poetry", {})
    tables = [poetry.get("dependencies", {}), poetry.get("dev-dependencies", {})]
    tables += [g.get("dependencies", {}) for g in poetry.get("group", {}).values()]
    for table in tables:
        for name, value in table.items() if isinstance(table, dict) else []:
            spec = value.get("version", "") if isinstance(value, dict) else value
            if isinstance(spec, str) and name != "python":
                spec = spec.replace(" ", "")
                spec = "" if spec == "*" else spec
                spec = f"=={spec}" if spec[:1].isdigit() else spec  # Poetry: bare is exact
                yield Pin(normalise(name), spec, path, newest_allowed(spec))


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


def read_pins(files: Mapping[str, str]) -> dict[str, Pin]:
    """package -> the pin that decides it: a lock file beats a requirements file beats pyproject."""
    ranked: dict[str, tuple[int, Pin]] = {}

    def offer(rank: int, pin: Pin) -> None:
        current = ranked.get(pin.package)
        if current is None or rank < current[0] or (rank == current[0] and not current[1].spec):
            ranked[pin.package] = (rank, pin)

    seen: set[str] = set()
    for path in sorted(files):
        name = PurePath(path).name
        if name in ("uv.lock", "poetry.lock", "Pipfile.lock"):
            for pin in _lock(path, files[path]):
                offer(0, pin)
        elif re.fullmatch(r"requirements.*\.(txt|in)", name) or (
            name.endswith(".txt") and "requirements" in PurePath(path).parts
        ):
            for pin in _requirements(path, files, seen):
                offer(1 if name.endswith(".txt") else 2, pin)
        elif name == "pyproject.toml":
            for pin in _pyproject(path, files[path]):
                offer(3, pin)
    return {package: pin for package, (_, pin) in ranked.items()}
