"""Plain, picklable facts about one module.

One libcst pass turns a file into a :class:`ModuleSummary`. Everything after that (deciding what
runs per call, joining modules, emitting findings) works on these facts only, so summaries can be
computed in worker processes, cached per file content, and joined in one cheap pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dbpoollint.analysis.values import Value


@dataclass(frozen=True)
class Span:
    line: int
    column: int
    end_line: int
    end_column: int


@dataclass(frozen=True)
class CreationSite:
    """A call to a pack's pool constructor or connection opener inside a function."""

    function: str
    span: Span
    callee: str
    kind: str
    library: str
    what: str
    pool_hint: str
    # How the result is kept: "local" (per call), "flask-g" (per request context).
    storage: str
    # The function hands the new client to its caller (`return Client(...)`, or a local that is
    # returned): the function is a client factory, DPL103's business rather than DPL101's.
    returned: bool = False


@dataclass(frozen=True)
class ClientCallFact:
    """Every call to a pack's pool constructor or opener, wherever it is (module level too).

    Limits, timeouts and URL rules read the arguments from here.
    """

    span: Span
    callee: str
    kind: str
    function: str | None  # enclosing function key; None at module level
    positional: tuple[Value, ...]
    keywords: tuple[tuple[str, Value], ...]
    star_kwargs: tuple[Value, ...]  # `**options` expansions, resolved later via constants
    target: str | None  # `engine = create_engine(...)` -> "engine"

    def keyword(self, name: str) -> Value | None:
        return next((v for k, v in self.keywords if k == name), None)


@dataclass(frozen=True)
class DecoratorFact:
    qualnames: frozenset[str]
    # For `@receiver.method(...)`: the method name, the receiver's local name and what it is.
    method: str = ""
    receiver: str = ""
    receiver_classes: frozenset[str] = frozenset()
    receiver_is_import: bool = False
    first_argument: str | None = None


@dataclass
class FunctionFact:
    key: str
    name: str
    class_key: str | None
    is_module_level: bool
    params: tuple[str, ...]
    decorators: tuple[DecoratorFact, ...]
    # Keys of functions in this module that this one calls or passes on.
    references: set[str] = field(default_factory=set)
    # `self.name(...)` / `cls.name(...)` method names, resolved against the class later.
    self_references: set[str] = field(default_factory=set)
    # Caching decorators or CLI/startup markers make a function a barrier, never per call.
    barrier: bool = False
    is_async: bool = False
    # Absolute qualified names of imported (non-stdlib) functions this one calls, for the
    # cross-module join: `from .db import get_db; get_db()` -> "app.db.get_db".
    external_calls: set[str] = field(default_factory=set)
    # Qualified names (local keys or absolute) of functions whose result this one closes:
    # `engine = make_engine(); ...; engine.dispose()`, `with get_client() as client:`.
    closes_results_of: set[str] = field(default_factory=set)


@dataclass
class ClassFact:
    key: str
    name: str
    base_qualnames: frozenset[str]
    methods: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HandlerRoot:
    """A function that runs once per request, job or invocation."""

    function: str
    label: str
    # Set when another module registers it (`Depends(db.get_engine)` in routers/users.py).
    registered_in: str = field(default="", compare=False)


@dataclass(frozen=True)
class ExternalRoot:
    """A handler registered here but defined in another module (Django urls.py -> views.py)."""

    qualname: str
    label: str
    as_class: bool


@dataclass
class ModuleSummary:
    path: str
    module: str
    is_test: bool
    functions: dict[str, FunctionFact] = field(default_factory=dict)
    classes: dict[str, ClassFact] = field(default_factory=dict)
    sites: list[CreationSite] = field(default_factory=list)
    roots: list[HandlerRoot] = field(default_factory=list)
    external_roots: list[ExternalRoot] = field(default_factory=list)
    # Classes the framework instantiates per request: `self` caches nothing across requests.
    per_request_classes: set[str] = field(default_factory=set)
    # Every pool/opener call with its arguments, and module-level constants (`NAME = value`).
    client_calls: list[ClientCallFact] = field(default_factory=list)
    constants: dict[str, Value] = field(default_factory=dict)
