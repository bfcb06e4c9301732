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
import re
from pathlib import Path
from string import Template
from typing import Any

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


# Multi-module projects: a route in `api.py` reaches a client or connection handled wrongly in
# another module, one project per shape (four Python files each; the finding is planted on the
# line that carries its `# expect:` comment, in whichever module the rule reports):
# - a helper module builds a client per call (`proj.db.run_query`), DPL101;
# - the same through a package re-export (`from .cache import bump` in `deps/__init__.py`);
# - the helper found through `[tool.setuptools] package-dir` (`{"<name>_app" = "source"}`);
# - a connection released by a helper of another module, outside `finally:` (DPL302), beside
#   one released by it in `finally:`, which must not be reported;
# - a helper building its default client per call (`if conn is None: conn = ...`), DPL101,
#   beside a route passing its own, which must not make it reported twice;
# - a factory returning a new client on an object (`r.client = Redis(); return r`), DPL103.
PROJECT_FILES = 4
CROSS_MODULE_KINDS = (
    "cross-module-helper",
    "cross-module-reexport",
    "cross-module-package-dir",
    "cross-module-releasing-helper",
    "cross-module-default-client",
    "cross-module-object-factory",
)
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
_PROJECT_POOL = Template('''"""The connection pool of $name."""

import atexit
import os

from psycopg2.pool import ThreadedConnectionPool

pool = ThreadedConnectionPool(1, 10, os.environ["DATABASE_URL"], connect_timeout=5)
atexit.register(pool.closeall)


def give_back(conn):
    pool.putconn(conn)
''')
_PROJECT_RELEASING_API = Template('''"""Routes of $name."""

from flask import Flask

from $name.db import give_back, pool

app = Flask(__name__)


@app.get("/$name/items")
def list_items():
    conn = pool.getconn()  # expect: DPL302
    rows = conn.cursor().execute("select * from items").fetchall()
    give_back(conn)
    return {"items": rows}


@app.get("/$name/users")
def list_users():
    conn = pool.getconn()
    try:
        return {"users": conn.cursor().execute("select * from users").fetchall()}
    finally:
        give_back(conn)
''')
_PROJECT_DEFAULT = Template(f'''"""Queries of $name."""

import os

import sqlalchemy

URL = os.environ["DATABASE_URL"]
engine = sqlalchemy.create_engine(
    URL, pool_size=5, max_overflow=5, pool_timeout=10, pool_pre_ping=True
)


def run_query(sql, conn=None):
    if conn is None:
        conn = sqlalchemy.create_engine(URL)  {EXPECT_MARKER}
    with conn.connect() as connection:
        return connection.execute(sqlalchemy.text(sql)).all()
''')
_PROJECT_DEFAULT_API = Template('''"""Routes of $name."""

from flask import Flask

from $name.db import engine, run_query

app = Flask(__name__)


@app.get("/$name/items")
def list_items():
    return {"items": run_query("select * from items")}


@app.get("/$name/users")
def list_users():
    return {"users": run_query("select * from users", engine)}
''')
_PROJECT_OBJECT = Template('''"""The repository of $name."""

import os

import redis


class Repository:
    client = None

    def hits(self):
        return self.client.incr("hits")


def make_repository():
    repository = Repository()
    repository.client = redis.Redis(host=os.environ["REDIS_HOST"])  # expect: DPL103
    return repository
''')


def _write_project(folder: Path, number: int, writer: _ModuleWriter) -> list[ExpectedFinding]:
    name = folder.name
    kind = CROSS_MODULE_KINDS[number % len(CROSS_MODULE_KINDS)]
    files: dict[str, str] = {"__init__.py": ""}
    util = writer.module(120, None)
    if kind == "cross-module-helper":
        files["api.py"] = _PROJECT_API.substitute(
            name=name, import_line=f"{name}.db import run_query", call='run_query("select 1")'
        )
        files["db.py"] = _PROJECT_HELPER.substitute(name=name)
        files["util.py"] = util
    elif kind == "cross-module-reexport":
        files["api.py"] = _PROJECT_API.substitute(
            name=name, import_line=f"{name}.deps import bump", call='bump("items")'
        )
        files["deps/__init__.py"] = 'from .cache import bump\n\n__all__ = ["bump"]\n'
        files["deps/cache.py"] = _PROJECT_CACHE.substitute(name=name)
    elif kind == "cross-module-package-dir":
        package = f"{name}_app"  # the folder is `source/`: only package-dir names it
        files = {
            "source/__init__.py": "",
            "source/api.py": _PROJECT_API.substitute(
                name=name,
                import_line=f"{package}.db import run_query",
                call='run_query("select 1")',
            ),
            "source/db.py": _PROJECT_HELPER.substitute(name=name),
            "source/util.py": util,
        }
        pyproject = f'[tool.setuptools]\npackage-dir = {{"{package}" = "source"}}\n'
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    elif kind == "cross-module-releasing-helper":
        files["api.py"] = _PROJECT_RELEASING_API.substitute(name=name)
        files["db.py"] = _PROJECT_POOL.substitute(name=name)
        files["util.py"] = util
    elif kind == "cross-module-default-client":
        files["api.py"] = _PROJECT_DEFAULT_API.substitute(name=name)
        files["db.py"] = _PROJECT_DEFAULT.substitute(name=name)
        files["util.py"] = util
    else:
        files["api.py"] = _PROJECT_API.substitute(
            name=name,
            import_line=f"{name}.repository import make_repository",
            call="make_repository().hits()",
        )
        files["repository.py"] = _PROJECT_OBJECT.substitute(name=name)
        files["util.py"] = util
    expected = []
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        for line, content in enumerate(text.splitlines(), 1):
            match = _EXPECT.search(content)
            if match:
                expected.append(ExpectedFinding(path, line, kind, match.group(1)))
    return expected


_EXPECT = re.compile(r"# expect: (DPL\d{3})$")


@dataclasses.dataclass(frozen=True)
class ExpectedFinding:
    path: Path
    line: int
    kind: str
    code: str = "DPL101"


@dataclasses.dataclass(frozen=True)
class SyntheticCorpus:
    root: Path
    files: int
    expected: tuple[ExpectedFinding, ...]
    good_files: int

    @property
    def expected_findings(self) -> int:
        """The DPL101 findings planted (the count every run is checked against)."""
        return sum(item.code == "DPL101" for item in self.expected)


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
    # One small multi-module project per ten bad files (at least one of each shape), carved
    # out of the plain files.
    wanted = max(round(bad_count / 10), len(CROSS_MODULE_KINDS)) if bad_count else 0
    project_count = min(wanted, (files - bad_count - good_count) // PROJECT_FILES)
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
            {
                "path": str(item.path.relative_to(root)),
                "line": item.line,
                "kind": item.kind,
                "code": item.code,
            }
            for item in expected
        ],
    }
    manifest_path = root.parent / f"{root.name}.expected.json"
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return SyntheticCorpus(root, files, tuple(expected), good_count)


def cross_module_recall(corpus: SyntheticCorpus, findings: list[dict[str, Any]]) -> str:
    """Recall on the findings planted in multi-module projects (helper, re-export, package-dir,
    releasing helper, default client, object factory), each with its own rule code; the
    shapes missed are named."""
    planted = {
        (item.path.resolve(), item.line, item.code): item.kind
        for item in corpus.expected
        if item.kind in CROSS_MODULE_KINDS
    }
    found = set()
    for item in findings:
        filename, location = item.get("filename"), item.get("location")
        if isinstance(filename, str) and isinstance(location, dict):
            found.add((Path(filename).resolve(), location.get("row"), item.get("code")))
    hit = len(planted.keys() & found)
    share = f"{hit / len(planted):.0%}" if planted else "n/a"
    missed = sorted({kind for key, kind in planted.items() if key not in found})
    note = f"; missed: {', '.join(missed)}" if missed else ""
    return f"cross-module recall {hit}/{len(planted)} ({share}){note}"


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
