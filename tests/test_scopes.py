"""Our scopes are libcst's: every qualified name and assignment the analysis can ask for agrees
with libcst's own ScopeProvider, on real code of many shapes and on the corners of Python."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, Scope, ScopeProvider

from dbpoollint.analysis.scopes import ScopesProvider, scopes_of
from dbpoollint.analysis.walk import children

CORNERS = """\
from __future__ import annotations
import os.path
import a.b.c as abc
import x.y
from . import sibling
from ..pkg import thing as other
from mod import *
from typing import cast, NewType, TypeVar, List
T = TypeVar("T", bound="os.PathLike")
N = NewType("N", int)
engine = None
x.y.z()
os.path.join("a")
abc.d.e()
redis = None
import redis
redis = redis.Redis()
client = make(a.b).c(d).e

class Box(Base, metaclass=Meta):
    attr = engine
    def method(self, value: "List[int]" = attr) -> "Box":
        global engine
        engine = make()
        z = cast("int", value)
        return [attr for attr in value if (w := attr)]
    other = lambda q, r=attr: q + r + attr
    class Inner:
        y = attr
        def deep(self):
            return attr

@deco(engine)
def outer(p=engine, *args, k: int = 1, **kw):
    total = 0
    def inner():
        nonlocal total
        total += 1
        return total
    for i, (j, k2) in enumerate(args):
        del i
    with open(p) as fh, other() as (u, v):
        fh.read(u, v)
    try:
        pass
    except ValueError as err:
        print(err)
    match p:
        case {"a": aa, **rest}:
            pass
        case Point(x=0, y=yy) | [1, *others]:
            pass
        case str() as s:
            pass
    gen = (a for a in args for b in a if b)
    d = {k: v for k, v in kw.items()}
    s = {f"{engine}" for _ in ()}
    items[0].attr, *tail = engine.execute(), 1
    print(x.y.z.w, sibling.f(), other.g, undefined_name, k2, yy, aa, w)
    return inner

def late():
    return later()
def later(): ...
later()
x = x
type Alias[K] = dict[K, engine]
def generic[U](a: U) -> U:
    return a
class G[V](Base):
    pass
"""


def _corpus() -> list[Path]:
    here = Path(__file__).parent
    stdlib = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
    return [
        *sorted((here.parent / "dbpoollint").rglob("*.py"))[::2],
        *sorted((here / "fixtures").rglob("*.py"))[::7],
        *stdlib[::10],
    ]


def _tree(node: cst.CSTNode) -> list[cst.CSTNode]:
    nodes = [node]
    for child in children(node):
        nodes.extend(_tree(child))
    return nodes


def _names(scope: Scope, node: cst.CSTNode) -> list[tuple[str, str]]:
    return sorted((q.name, q.source.name) for q in scope.get_qualified_names_for(node))


def _assignments(scope: Scope, name: str) -> list[tuple[str, str, int, str]] | None:
    if name not in scope:
        return None
    return sorted(
        (type(a).__name__, a.name, id(getattr(a, "node", None)), type(a.scope).__name__)
        for a in scope[name]
    )


def _differences(module: cst.Module) -> tuple[int, list[str]]:
    theirs = MetadataWrapper(module, unsafe_skip_copy=True).resolve(ScopeProvider)
    ours = scopes_of(module)
    checked, differences = 0, []
    for node in _tree(module):
        if not isinstance(node, cst.Name | cst.Attribute | cst.Call):
            continue
        expected, got = theirs.get(node), ours.get(node)
        where = f"{type(node).__name__} {module.code_for_node(node)[:50]!r}"
        if (expected is None) != (got is None):
            differences.append(f"{where}: scope {expected} != {got}")
            continue
        if expected is None or got is None:
            continue
        checked += 1
        if (type(expected), expected._name_prefix) != (type(got), got._name_prefix):
            differences.append(f"{where}: {type(expected).__name__} != {type(got).__name__}")
        if _names(expected, node) != _names(got, node):
            differences.append(f"{where}: {_names(expected, node)} != {_names(got, node)}")
        if isinstance(node, cst.Name) and _assignments(expected, node.value) != _assignments(
            got, node.value
        ):
            differences.append(f"{where}: assignments differ")
    return checked, differences


def test_the_corners_of_python_resolve_as_libcst_resolves_them() -> None:
    checked, differences = _differences(cst.parse_module(CORNERS))
    assert differences == []
    assert checked > 150


def test_real_code_resolves_as_libcst_resolves_it() -> None:
    checked = 0
    for path in _corpus():
        try:
            module = cst.parse_module(path.read_bytes())
        except (cst.ParserSyntaxError, RecursionError):
            continue
        count, differences = _differences(module)
        assert differences == [], path
        checked += count
    assert checked > 30_000


def test_the_provider_serves_code_that_resolves_through_a_wrapper() -> None:
    module = cst.parse_module("import sqlalchemy as sa\ndef f():\n    return sa.create_engine(u)\n")
    scopes = MetadataWrapper(module, unsafe_skip_copy=True).resolve(ScopesProvider)
    call = next(n for n in scopes if isinstance(n, cst.Call))
    scope = scopes[call]
    assert scope is not None
    assert _names(scope, call) == [("sqlalchemy.create_engine", "IMPORT")]


@pytest.mark.parametrize(
    ("source", "code", "expected"),
    [
        # The access on the right-hand side comes before the rebinding: only the import.
        ("import redis\nredis = redis.Redis()\n", "redis", [("redis", "IMPORT")]),
        # A call is resolved by name in its scope: every binding of `redis` there.
        (
            "import redis\nredis = redis.Redis()\n",
            "redis.Redis()",
            [("redis.Redis", "IMPORT"), ("redis.Redis", "LOCAL")],
        ),
        # A class body's names are not visible from its methods.
        (
            "import pool\nclass A:\n    pool = 1\n    def m(self):\n        return pool.make()\n",
            "pool.make()",
            [("pool.make", "IMPORT")],
        ),
        # `global` sends the assignment to the module; the function's later call sees it.
        (
            "engine = None\ndef f():\n    global engine\n    engine = make()\n    engine.go()\n",
            "engine.go()",
            [("engine.go", "LOCAL")],
        ),
    ],
)
def test_flow_and_visibility(source: str, code: str, expected: list[tuple[str, str]]) -> None:
    module = cst.parse_module(source)
    scopes = scopes_of(module)
    node = [n for n in _tree(module) if module.code_for_node(n) == code and n in scopes][-1]
    assert _names(scopes[node], node) == expected
