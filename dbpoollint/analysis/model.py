"""Plain, picklable facts about one module.

One libcst pass turns a file into a :class:`ModuleSummary`. Everything after that (deciding what
runs per call, joining modules, emitting findings) works on these facts only, so summaries can be
computed in worker processes, cached per file content, and joined in one cheap pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dbpoollint.analysis.values import Value

if TYPE_CHECKING:
    from libcst.metadata import CodeRange


@dataclass(frozen=True)
class Span:
    line: int
    column: int
    end_line: int
    end_column: int


# The position of a fact before the positions pass has run; replaced by `span_of` afterwards.
NO_SPAN = Span(0, 0, 0, 0)


def span_of(position: CodeRange) -> Span:
    """libcst's 0-based columns to the 1-based ones findings report."""
    return Span(
        position.start.line, position.start.column + 1, position.end.line, position.end.column + 1
    )


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
    # Handed out on an object, not as itself: `r.client = Redis(); return r`, or a method's
    # `self.client = Redis(); return self`.
    on_object: bool = False
    # Built only when the caller passes nothing for this parameter (`def run(sql, conn=None):
    # if conn is None: conn = create_engine(URL)`): its name and position (-1: keyword-only).
    default_for: str = ""
    default_position: int = -1


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
    # The call is a statement of its own (`await Tortoise.init(...)`): nothing local holds the
    # result, so the library keeps the pool itself.
    discarded: bool = False
    # In an `except` handler whose `try:` made the same call with pool options: the retry for a
    # dialect that rejects them (`except TypeError:  # SQLite does not support pool_size`).
    fallback: bool = False

    def keyword(self, name: str) -> Value | None:
        return next((v for k, v in self.keywords if k == name), None)


@dataclass(frozen=True)
class DjangoDatabaseFact:
    """One entry of a Django settings module's `DATABASES` (a dict, or `dj_database_url`)."""

    alias: str
    span: Span  # the entry's dict literal or `dj_database_url.config(...)` call
    via: str  # "dict" or "dj_database_url"
    engine: str | None
    conn_max_age: Value | None
    conn_health_checks: Value | None
    options_pool: Value | None
    unknown: bool = False  # a `**` spread or a helper call: keys may be set elsewhere


@dataclass(frozen=True)
class FlaskSqlalchemyFact:
    """Flask-SQLAlchemy's engine settings: `SQLAlchemy(app, engine_options={...})` ("extension"),
    `SQLALCHEMY_ENGINE_OPTIONS = {...}` ("options"; `value` kind "other" when it cannot be read)
    and `SQLALCHEMY_DATABASE_URI = "..."` ("uri")."""

    kind: str
    span: Span
    value: Value | None


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
    # Qualified names (local keys or absolute) of functions whose result this one keeps in a
    # guarded cache (`if key not in _clients: _clients[key] = make_client(key)`): calling this
    # one per request does not call those per request.
    cached_calls: set[str] = field(default_factory=set)
    # Plain names this function returns (`return engine`, `return engine, Session`).
    returned_names: set[str] = field(default_factory=set)
    # How it calls project functions (local keys or absolute names): per callee, each call's
    # number of positional arguments (-1 with `*args`) and keyword names.
    call_shapes: dict[str, set[tuple[int, tuple[str, ...]]]] = field(default_factory=dict)


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


@dataclass(frozen=True)
class UrlLiteralFact:
    """A string literal (or f-string template) in code that holds a connection URL."""

    span: Span
    text: str
    function: str | None


@dataclass(frozen=True)
class SettingsField:
    """A field of a settings class (pydantic `BaseSettings`): its env variable and default."""

    class_key: str
    name: str
    env_names: tuple[str, ...]  # the variables that set it (prefix applied)
    case_sensitive: bool
    default: Value | None


@dataclass(frozen=True)
class MigrationUrlFact:
    """Where an alembic `env.py` takes its URL from.

    kind: "set-main-option" / "configure-url" (`value` is what is set), or "reads-ini"
    (`config.get_main_option("sqlalchemy.url")`, `engine_from_config(...)`: alembic.ini decides).
    In code that runs migrations (alembic's `command.upgrade`, a subprocess running
    `alembic upgrade` or `manage.py migrate`), anywhere: "runner-env" (`variable` is the
    environment variable the runner sets to `value`) or "runner-config" (the Config's
    `sqlalchemy.url`); `runner` describes the runner (`alembic upgrade head`).
    """

    span: Span
    kind: str
    value: Value | None = None
    variable: str = ""
    runner: str = ""


@dataclass(frozen=True)
class DjangoDbUrlFact:
    """A Django `DATABASES` entry's connection target, for DPL401 (Django migrations)."""

    span: Span
    alias: str
    engine: Value | None
    host: Value | None = None
    port: Value | None = None
    url: Value | None = None  # `dj_database_url.config(default=...)` / `.parse(url)`


@dataclass
class UrlFacts:
    """What the URL rules (DPL401-403, DPL601) read from a module."""

    literals: list[UrlLiteralFact] = field(default_factory=list)
    settings_fields: list[SettingsField] = field(default_factory=list)
    # module-level name -> settings class key: `settings = Settings()` / `= get_settings()`
    settings_instances: dict[str, str] = field(default_factory=dict)
    is_alembic_env: bool = False
    migration_urls: list[MigrationUrlFact] = field(default_factory=list)
    # Values of local names and of functions returning one value, resolved in this module.
    resolved_names: dict[str, Value] = field(default_factory=dict)
    django_databases: list[DjangoDbUrlFact] = field(default_factory=list)
    # Env files the module loads by name: `load_dotenv("env.supabase")`, pydantic `env_file`.
    env_files: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CloseCall:
    """`x.dispose()` / `await x.close()` / `atexit.register(x.dispose)` on a module-level name."""

    span: Span
    target: str  # qualified name of the closed object (`app.db.engine`, `engine`)
    method: str
    function: str | None  # enclosing function key; None at module level
    registered: bool = False  # passed as a callback (`atexit.register(engine.dispose)`)
    after_yield: bool = False  # a `yield` of the enclosing function comes before it
    hook: str = ""  # for registered closes: "shutdown" / "per-request"


@dataclass(frozen=True)
class HookFact:
    """A function registered as a lifecycle hook: shutdown or per-request teardown."""

    function: str  # function key in this module
    hook: str  # "shutdown" or "per-request"
    label: str  # `FastAPI lifespan`, `teardown_appcontext`, ...
    after_yield_only: bool = False  # lifespan: only the code after `yield` runs at shutdown
    # A hook imported from another module (`FastAPI(lifespan=app.core.lifespan)`): its
    # absolute name, resolved in the join; `function` is then "".
    qualname: str = ""


@dataclass(frozen=True)
class AcquireFact:
    """A connection/session acquisition inside a function and what the function does with it."""

    span: Span
    function: str
    variable: str
    callee: str
    # "with" (context manager), "finally" (released in a finally), "returned", "yielded",
    # "stored" (kept on self/global), "passed" (handed to another call), "unreleased",
    # "released-unprotected" (released, but not in a finally, with raising code between).
    verdict: str
    fixable: bool = False
    # For holder classes (`db = RequestDb()`): attributes read on the variable in the function
    # (`close`, `fetch`; `conn.close` for `db.conn.close`), whether it is yielded, and whether a
    # nested function, class or lambda mentions it (it may be closed there).
    attributes: frozenset[str] = frozenset()
    yielded: bool = False
    nested: bool = False
    # Handed to functions that may release it (`close_conn(conn)`, verdict "escapes"): each
    # call as (callee's qualified name or local key, the argument's slot: its position or
    # keyword), and the verdict (with fixability) if those calls release it, or only use it.
    # The rule decides, with every module known, what each callee does with its argument.
    helpers: tuple[tuple[str, str], ...] = ()
    if_released: tuple[str, bool] = ("", False)
    if_kept: tuple[str, bool] = ("", False)


@dataclass(frozen=True)
class ParamUse:
    """What a function does with one parameter: "release" (`c.close()`, `pool.putconn(c)`,
    `with c:`), "keep" (only reads or logs it), "escape" (returns, stores or rebinds it), or
    "handed" to other functions (`helpers`, as in AcquireFact) and nothing else."""

    use: str
    helpers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class AttributeAcquireFact:
    """A method storing an acquisition on `self`: `self.conn = pool.getconn()` (or a local
    acquisition assigned to `self.conn` in the same method)."""

    span: Span
    function: str  # method key: `RequestDb.__init__`
    class_key: str
    attribute: str
    callee: str  # as in AcquireFact: `psycopg2.connect`, `app.db.pool.getconn`, `SessionLocal()`


@dataclass
class LifecycleFacts:
    closes: list[CloseCall] = field(default_factory=list)
    hooks: list[HookFact] = field(default_factory=list)
    acquisitions: list[AcquireFact] = field(default_factory=list)
    # function key -> names it declares `global`: a client assigned to one is long-lived
    globals_declared: dict[str, set[str]] = field(default_factory=dict)
    # module-level code closes something (a script's end): function keys called there too
    module_level_calls: set[str] = field(default_factory=set)
    # module-level names bound to a session factory (`SessionLocal = sessionmaker(...)`)
    session_factories: set[str] = field(default_factory=set)
    # Holder classes: acquisitions stored on `self`, and per method key the `self` attributes it
    # releases (`self.conn.close()`, `pool.putconn(self.conn)`, `with self.conn:`).
    attribute_acquisitions: list[AttributeAcquireFact] = field(default_factory=list)
    attribute_releases: dict[str, set[str]] = field(default_factory=dict)
    # Functions handing their caller a connection they acquire (`return pool.getconn()`,
    # `conn = engine.connect(); return conn`): function key -> the acquisition's callee, in
    # AcquireFact's spelling. The rule decides, with every module known, which really are.
    returned_acquisitions: dict[str, str] = field(default_factory=dict)
    # Functions (not methods): parameter name -> what the function does with it, so that a
    # caller handing it a connection knows whether `close_conn(conn)` releases it.
    param_uses: dict[str, dict[str, ParamUse]] = field(default_factory=dict)


@dataclass(frozen=True)
class LoopCallFact:
    """A call that runs once per loop iteration."""

    span: Span
    callees: tuple[str, ...]  # qualified names of what is called
    client: bool  # a pack's pool constructor or opener (else a project function)
    function: str | None  # enclosing function key; None at module level
    loop: str  # "for", "while", "comprehension"
    loop_line: int
    # An argument reads a name the loop assigns (`for url in urls: create_engine(url)`).
    varies: bool
    # The loop stops once the call succeeds (`break`/`return` in a try, `while`, `range`).
    retry: bool
    # `name = call(...)` at the top of a for/while body, arguments invariant: the fix can
    # move it above the loop. Empty when it cannot.
    hoist_target: str = ""


@dataclass(frozen=True)
class ForkFact:
    span: Span
    what: str  # "os.fork()", "multiprocessing.Process", "ProcessPoolExecutor"
    function: str | None


@dataclass(frozen=True)
class ForkResetFact:
    """Code that runs in a child after a fork: a Celery `worker_process_init` handler or an
    `os.register_at_fork(after_in_child=...)` callback (`function` is its key, or "" for a
    lambda whose closes are in `targets`)."""

    span: Span
    hook: str
    function: str
    targets: frozenset[str] = frozenset()


@dataclass
class ProcessFacts:
    """Loops and processes (DPL104, DPL105, the budget), from dbpoollint.analysis.process."""

    loop_calls: list[LoopCallFact] = field(default_factory=list)
    forks: list[ForkFact] = field(default_factory=list)
    resets: list[ForkResetFact] = field(default_factory=list)
    # function key -> qualified names of what it disposes, closes or resets
    function_resets: dict[str, set[str]] = field(default_factory=dict)
    # `x.dispose(close=False)` anywhere: SQLAlchemy's post-fork reset
    disposed_keeping_connections: set[str] = field(default_factory=set)
    start_methods: set[str] = field(default_factory=set)  # set_start_method / get_context
    imports: set[str] = field(default_factory=set)  # absolute names of non-stdlib imports


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
    # Django settings: every `DATABASES` entry assigned at module level.
    databases: list[DjangoDatabaseFact] = field(default_factory=list)
    # Flask-SQLAlchemy: the extension and its engine settings, wherever they are written.
    flask_sqlalchemy: list[FlaskSqlalchemyFact] = field(default_factory=list)
    # URL discovery and lifecycle facts (DPL3xx/4xx/601), from dbpoollint.analysis.urlfacts.
    urls: UrlFacts = field(default_factory=UrlFacts)
    lifecycle: LifecycleFacts = field(default_factory=LifecycleFacts)
    # What the resolver needs: module-level import bindings (local name -> absolute qualified
    # name: `from .cache import client` -> "deps.cache.client"), `from x import *` modules, and
    # `__all__` when it is a literal list (None otherwise).
    imports: dict[str, str] = field(default_factory=dict)
    star_imports: list[str] = field(default_factory=list)
    exports: tuple[str, ...] | None = None
    process: ProcessFacts = field(default_factory=ProcessFacts)
    # The process that runs it (dbpoollint.analysis.contexts): "service", "one-off", "examples";
    # CLI commands and management command methods inside a service module are one-off too.
    run_context: str = "service"
    # The DPL101 fix's applicability per creation site (line, column), planned in the walk:
    # ("safe" | "unsafe" | None in the handler itself, the same in a helper it calls).
    hoist_plans: dict[tuple[int, int], tuple[str | None, str | None]] = field(default_factory=dict)
    one_off_functions: frozenset[str] = frozenset()
    context_markers: frozenset[str] = frozenset()
