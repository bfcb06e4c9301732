"""Generate a deterministic synthetic corpus with a known number of DPL101 mistakes.

Three kinds of module, all a few hundred lines of ordinary code:

- *bad*: one handler (Flask / FastAPI) builds a pool or client per request; the constructor's line
  carries ``# expect: DPL101``, so exactly one DPL101 finding is expected per bad file;
- *good*: the same libraries used correctly (module-level client, cached getter, lifespan hook);
- *plain*: no database imports at all, which a prefilter should skip cheaply.

The templates are strings: nothing here imports or calls a database library.
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path
from string import Template

EXPECT_MARKER = "# expect: DPL101"
FILES_PER_PACKAGE = 100

_VERBS = (
    "compute",
    "collect",
    "render",
    "merge",
    "split",
    "scan",
    "rank",
    "score",
    "tally",
    "trim",
)
_NOUNS = ("invoice", "order", "ticket", "report", "widget", "layer", "sample", "token", "segment")
_ADJECTIVES = ("stable", "pending", "weighted", "recent", "sparse", "nested", "archived", "daily")
_TABLES = ("users", "orders", "invoices", "events", "products", "accounts")

_HEADER = Template('''\
"""$Adj $noun helpers for the $word service."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable, Iterator
$imports
log = logging.getLogger(__name__)
''')

_PLAIN_BLOCKS = tuple(
    Template(text)
    for text in (
        '''
def $fn(values: Iterable[int], threshold: int = $n) -> int:
    """Sum the $adj values above the threshold, weighting each by $k."""
    total = 0
    for value in values:
        if value > threshold:
            total += value * $k
        elif value == threshold:
            total -= $k
    return total
''',
        '''
@dataclasses.dataclass
class $Cls:
    """A $adj $noun with a name, a size and tags."""

    name: str
    size: int = $n
    tags: list[str] = dataclasses.field(default_factory=list)

    def label(self) -> str:
        return f"{self.name}:{self.size}"

    def grow(self, amount: int) -> None:
        if amount < 0:
            raise ValueError(f"cannot shrink a $noun by {amount}")
        self.size += amount
        log.debug("grew %s to %d", self.name, self.size)

    def has_tag(self, tag: str) -> bool:
        return tag.lower() in (t.lower() for t in self.tags)
''',
        '''
_${FN}_PATTERN = re.compile(r"^(?P<key>[a-z_]+)=(?P<value>.*)$$")


def $fn(text: str) -> dict[str, str]:
    """Parse $noun settings written as key=value lines."""
    result: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _${FN}_PATTERN.match(line)
        if match is None:
            log.warning("line %d is not a $noun setting: %r", number, line)
            continue
        result[match["key"]] = match["value"]
    return result
''',
        '''
def $fn(items: list[str], size: int = $n) -> Iterator[list[str]]:
    """Yield $adj batches of at most `size` items."""
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
''',
        '''
class ${Cls}Error(Exception):
    """Raised when a $noun is missing or duplicated."""


class ${Cls}Registry:
    """Keeps $adj ${noun}s by key."""

    def __init__(self) -> None:
        self._items: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._items)

    @property
    def largest(self) -> int:
        return max(self._items.values(), default=0)

    def add(self, key: str, value: int) -> None:
        if key in self._items:
            raise ${Cls}Error(f"duplicate $noun {key!r}")
        self._items[key] = value

    def remove(self, key: str) -> int:
        try:
            return self._items.pop(key)
        except KeyError:
            raise ${Cls}Error(f"unknown $noun {key!r}") from None

    @staticmethod
    def normalise(key: str) -> str:
        return key.strip().lower().replace(" ", "_")
''',
        '''
def $fn(n: int) -> list[int]:
    """Return the first n terms of the $adj $noun sequence."""
    if n <= 0:
        return []
    sequence = [1, $k]
    while len(sequence) < n:
        a, b = sequence[-2], sequence[-1]
        sequence.append((a + b) % $m)
    return sequence[:n]
''',
        '''
def $fn(records: list[dict[str, int]], key: str = "$word") -> list[dict[str, int]]:
    """Sort $noun records by `key`, dropping those without it."""
    kept = [record for record in records if key in record]
    kept.sort(key=lambda record: (record[key], len(record)))
    return kept[:$n]
''',
    )
)


@dataclasses.dataclass(frozen=True)
class Pattern:
    """A database snippet: imports for the header and a body placed among the plain blocks."""

    kind: str
    imports: str
    body: Template


_BAD = (
    Pattern(
        "flask-sqlalchemy-create-engine",
        "import os\n\nimport sqlalchemy\nfrom flask import Flask, jsonify\n",
        Template(f"""
app = Flask(__name__)


@app.route("/$route")
def $fn():
    engine = sqlalchemy.create_engine(os.environ["DATABASE_URL"])  {EXPECT_MARKER}
    with engine.connect() as conn:
        rows = conn.execute(sqlalchemy.text("SELECT id, name FROM $table")).all()
    return jsonify([dict(row._mapping) for row in rows])
"""),
    ),
    Pattern(
        "fastapi-redis",
        "import os\n\nimport redis\nfrom fastapi import APIRouter\n",
        Template(f"""
router = APIRouter()


@router.get("/$route")
def $fn(key: str) -> dict[str, str | None]:
    cache = redis.Redis(host=os.environ.get("REDIS_HOST", "localhost"), port=6379)  {EXPECT_MARKER}
    value = cache.get(key)
    return {{"key": key, "value": value.decode() if value else None}}
"""),
    ),
    Pattern(
        "fastapi-asyncpg-create-pool",
        "import os\n\nimport asyncpg\nfrom fastapi import APIRouter\n",
        Template(f"""
router = APIRouter()


@router.get("/$route/{{item_id}}")
async def $fn(item_id: int) -> dict[str, object]:
    pool = await asyncpg.create_pool(os.environ["DATABASE_URL"])  {EXPECT_MARKER}
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM $table WHERE id = $$1", item_id)
    await pool.close()
    return dict(row) if row else {{}}
"""),
    ),
    Pattern(
        "flask-blueprint-pymongo",
        "import os\n\nfrom flask import Blueprint, jsonify\nfrom pymongo import MongoClient\n",
        Template(f"""
bp = Blueprint("$word", __name__)


@bp.get("/$route")
def $fn():
    client = MongoClient(os.environ.get("MONGO_URL", "mongodb://localhost:27017"))  {EXPECT_MARKER}
    docs = list(client.app.$table.find({{}}, {{"_id": 0}}).limit(50))
    return jsonify(docs)
"""),
    ),
)

_GOOD = (
    Pattern(
        "flask-module-level-engine",
        "import os\n\nfrom flask import Flask, jsonify\n"
        "from sqlalchemy import create_engine, text\n",
        Template("""
engine = create_engine(
    os.environ["DATABASE_URL"], pool_size=5, max_overflow=5, pool_timeout=10, pool_pre_ping=True
)
app = Flask(__name__)


@app.route("/$route")
def $fn():
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, name FROM $table")).all()
    return jsonify([dict(row._mapping) for row in rows])
"""),
    ),
    Pattern(
        "fastapi-module-level-redis",
        "import os\n\nimport redis\nfrom fastapi import APIRouter\n",
        Template("""
cache = redis.Redis(
    host=os.environ.get("REDIS_HOST", "localhost"),
    port=6379,
    max_connections=20,
    socket_connect_timeout=2,
)
router = APIRouter()


@router.get("/$route")
def $fn(key: str) -> dict[str, str | None]:
    value = cache.get(key)
    return {"key": key, "value": value.decode() if value else None}
"""),
    ),
    Pattern(
        "fastapi-cached-pymongo-dependency",
        "import functools\nimport os\n\nfrom fastapi import APIRouter, Depends\n"
        "from pymongo import MongoClient\n",
        Template("""
router = APIRouter()


@functools.cache
def get_client() -> MongoClient:
    return MongoClient(os.environ["MONGO_URL"], maxPoolSize=20, serverSelectionTimeoutMS=2000)


@router.get("/$route")
def $fn(client: MongoClient = Depends(get_client)) -> list[dict[str, object]]:
    return list(client.app.$table.find({}, {"_id": 0}).limit(50))
"""),
    ),
    Pattern(
        "fastapi-lifespan-asyncpg",
        "import contextlib\nimport os\nfrom collections.abc import AsyncIterator\n\n"
        "import asyncpg\nfrom fastapi import FastAPI, Request\n",
        Template("""
@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(os.environ["DATABASE_URL"], min_size=1, max_size=10)
    try:
        yield
    finally:
        await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/$route/{item_id}")
async def $fn(request: Request, item_id: int) -> dict[str, object]:
    async with request.app.state.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM $table WHERE id = $$1", item_id)
    return dict(row) if row else {}
"""),
    ),
)


# Multi-module projects: a route in `api.py` reaches a client built per call in another module,
# through a helper module (`proj_000.db`) or a package re-export (`proj_001.deps`). Four files
# each; the finding is planted in the module that builds the client.
PROJECT_FILES = 4
CROSS_MODULE_KINDS = ("cross-module-helper", "cross-module-reexport")
_PROJECT_API = Template('''"""Routes of $name."""

from flask import Flask

from $import_line

app = Flask(__name__)


@app.get("/$name/items")
def list_items():
    return {"items": $call}
''')
_PROJECT_HELPER = Template(f'''"""Queries of $name."""

import os

import sqlalchemy


def run_query(sql):
    engine = sqlalchemy.create_engine(os.environ["DATABASE_URL"])  {EXPECT_MARKER}
    with engine.connect() as conn:
        return conn.execute(sqlalchemy.text(sql)).all()
''')
_PROJECT_CACHE = Template(f'''"""Counters of $name."""

import os

import redis


def bump(key):
    client = redis.Redis(host=os.environ.get("REDIS_HOST", "localhost"))  {EXPECT_MARKER}
    return client.incr(key)
''')


def _write_project(folder: Path, number: int, writer: _ModuleWriter) -> list[ExpectedFinding]:
    name = folder.name
    kind = CROSS_MODULE_KINDS[number % len(CROSS_MODULE_KINDS)]
    if kind == "cross-module-helper":
        files = {
            "__init__.py": "",
            "api.py": _PROJECT_API.substitute(
                name=name, import_line=f"{name}.db import run_query", call='run_query("select 1")'
            ),
            "db.py": _PROJECT_HELPER.substitute(name=name),
            "util.py": writer.module(120, None),
        }
        planted = "db.py"
    else:
        files = {
            "__init__.py": "",
            "api.py": _PROJECT_API.substitute(
                name=name, import_line=f"{name}.deps import bump", call='bump("items")'
            ),
            "deps/__init__.py": 'from .cache import bump\n\n__all__ = ["bump"]\n',
            "deps/cache.py": _PROJECT_CACHE.substitute(name=name),
        }
        planted = "deps/cache.py"
    expected = []
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if relative == planted:
            line = next(i for i, t in enumerate(text.splitlines(), 1) if t.endswith(EXPECT_MARKER))
            expected.append(ExpectedFinding(path, line, kind))
    return expected


@dataclasses.dataclass(frozen=True)
class ExpectedFinding:
    path: Path
    line: int
    kind: str


@dataclasses.dataclass(frozen=True)
class SyntheticCorpus:
    root: Path
    files: int
    expected: tuple[ExpectedFinding, ...]
    good_files: int

    @property
    def expected_findings(self) -> int:
        return len(self.expected)


class _ModuleWriter:
    """Builds one module's text from the shared random generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def words(self) -> dict[str, str]:
        verb, noun = self.rng.choice(_VERBS), self.rng.choice(_NOUNS)
        adj = self.rng.choice(_ADJECTIVES)
        return {"verb": verb, "noun": noun, "adj": adj, "Adj": adj.capitalize(), "word": noun}

    def plain_block(self, index: int) -> str:
        words = self.words()
        fn = f"{words['verb']}_{words['noun']}_{index}"
        return self.rng.choice(_PLAIN_BLOCKS).substitute(
            words,
            fn=fn,
            FN=fn.upper(),
            Cls=f"{words['Adj']}{words['noun'].capitalize()}{index}",
            n=self.rng.randint(2, 500),
            k=self.rng.randint(2, 9),
            m=self.rng.choice((97, 1009, 65521)),
        )

    def module(self, target_lines: int, pattern: Pattern | None) -> str:
        blocks: list[str] = []
        lines = 10
        while lines < target_lines:
            blocks.append(self.plain_block(len(blocks)))
            lines += blocks[-1].count("\n")
        if pattern is not None:
            words = self.words()
            body = pattern.body.substitute(
                fn=f"{words['verb']}_{words['noun']}_view",
                route=f"{words['noun']}s/{words['adj']}",
                table=self.rng.choice(_TABLES),
                word=words["noun"],
            )
            blocks.insert(self.rng.randint(0, len(blocks)), body)
        imports = "" if pattern is None else "\n" + pattern.imports
        header = _HEADER.substitute(self.words(), imports=imports)
        return header + "\n".join(blocks)


def generate(root: Path, files: int = 2000, density: float = 0.1, seed: int = 0) -> SyntheticCorpus:
    """Write `files` modules under `root` (which must be empty or missing).

    `density` of them are bad (one DPL101 each), as many again are good, the rest plain. The same
    arguments always produce byte-identical files. An ``expected.json`` manifest listing each
    expected finding is written next to `root`, not inside it, so the linter never sees it.
    """
    if files < 0 or not 0.0 <= density <= 1.0:
        raise ValueError("files must be >= 0 and density within [0, 1]")
    rng = random.Random(seed)
    bad_count = round(files * density)
    good_count = min(bad_count, files - bad_count)
    # One small multi-module project per ten bad files, carved out of the plain files.
    project_count = min(round(bad_count / 10), (files - bad_count - good_count) // PROJECT_FILES)
    module_files = files - project_count * PROJECT_FILES
    chosen = rng.sample(range(module_files), bad_count + good_count)
    patterns: dict[int, Pattern] = {}
    for number, index in enumerate(chosen):
        if number < bad_count:
            patterns[index] = _BAD[number % len(_BAD)]
        else:
            patterns[index] = _GOOD[number % len(_GOOD)]

    writer = _ModuleWriter(rng)
    expected: list[ExpectedFinding] = []
    for index in range(module_files):
        pattern = patterns.get(index)
        low, high = (150, 400) if pattern is None else (60, 300)
        text = writer.module(rng.randint(low, high), pattern)
        path = root / f"pkg_{index // FILES_PER_PACKAGE:03d}" / f"module_{index:05d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        for line_number, line in enumerate(text.splitlines(), start=1):
            if line.endswith(EXPECT_MARKER):
                assert pattern is not None
                expected.append(ExpectedFinding(path, line_number, pattern.kind))

    for number in range(project_count):
        expected.extend(_write_project(root / f"proj_{number:03d}", number, writer))

    manifest = {
        "seed": seed,
        "files": files,
        "density": density,
        "good_files": good_count,
        "expected": [
            {"path": str(item.path.relative_to(root)), "line": item.line, "kind": item.kind}
            for item in expected
        ],
    }
    manifest_path = root.parent / f"{root.name}.expected.json"
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return SyntheticCorpus(root, files, tuple(expected), good_count)


def big_module(path: Path, lines: int, seed: int = 0) -> int:
    """One module of about `lines` lines: plain blocks with a DB handler every ~2,000 lines,
    the shape of a generated or long-grown service module. Returns the expected DPL101s."""
    rng = random.Random(seed)
    writer = _ModuleWriter(rng)
    parts: list[str] = []
    count = expected = 0
    while count < lines:
        pattern = _BAD[expected % len(_BAD)]
        part = writer.module(2000, pattern)
        # Each part repeats its imports: fine for Python, and every handler stays resolvable.
        text = part.replace("from __future__ import annotations\n", "")
        expected += text.count(EXPECT_MARKER)
        parts.append(text.replace("_view(", f"_view_{len(parts)}("))
        count += text.count("\n")
    path.write_text("from __future__ import annotations\n" + "\n".join(parts), encoding="utf-8")
    return expected
