from __future__ import annotations

from collections.abc import Iterator

from dbpoollint.analysis.contexts import LONG_LIVED
from dbpoollint.checks.base import Finding, Project, Rule
from dbpoollint.checks.knobs import (
    is_number,
    literal_code,
    pool_calls,
    versions,
)
from dbpoollint.checks.per_call import per_call_sites


class ImplicitPoolSize(Rule):
    """
    ## What it does
    Finds a pool whose size is left to the library default: `create_engine()` without
    `pool_size` (5), `asyncpg.create_pool()` without `min_size`/`max_size` (10),
    `MongoClient()` without `maxPoolSize` (100), redis-py 8 without `max_connections` (100),
    `psycopg_pool.ConnectionPool()` without `min_size` (4), peewee's pools (20), ...

    ## Why is this bad?
    The pool size times the number of processes is the number of connections the database must
    accept. A default nobody wrote down changes with library upgrades (redis-py 8.0 went from
    unbounded to 100) and is invisible in review and in the connection budget.

    ## Example
    ```python
    engine = create_engine(DATABASE_URL)
    ```

    ## Use instead
    ```python
    engine = create_engine(DATABASE_URL, pool_size=5)
    ```

    ## Fix safety
    The fix writes the library's default for the pinned version explicitly. It is *safe* when
    the URL is known to reach a server database (a literal `postgresql://`, `mysql://`, ...
    URL, or a library that only talks to servers): the pool behaves exactly as before. When
    the URL comes from the environment or settings it may be SQLite, whose pool classes reject
    `pool_size=` with `TypeError`, so the fix is *unsafe* and the message says so.

    ## Options
    - How this is decided: as for DPL201 (pins, `**options`, URLs, `NullPool`/SQLite, tests).
      A pool built in a per-call context is left to DPL101: writing its size down would not help.
      With no pin the newest version's default is written, and the message says so. Size
      passed as a URL parameter (`?max_size=`, `maxPoolSize=`) counts as set. Flask-SQLAlchemy's
      `SQLAlchemy(app)` is read with its `engine_options` and `SQLALCHEMY_ENGINE_OPTIONS` (see
      DPL205); the fix writes into `engine_options={...}`.

    ## References
    - [SQLAlchemy: pool_size](https://github.com/sqlalchemy/sqlalchemy/blob/rel_2_0_52/lib/sqlalchemy/pool/impl.py#L75)
    - [asyncpg: create_pool](https://magicstack.github.io/asyncpg/current/api/index.html#asyncpg.pool.create_pool)
    - [psycopg_pool: pool sizing](https://www.psycopg.org/psycopg3/docs/advanced/pool.html#pool-size)
    """

    code = "DPL202"
    name = "implicit-pool-size"
    contexts = LONG_LIVED
    enabled_by_default = False  # opt-in: DPL501 is where pool sizes matter
    severity = "warning"
    severity_reason = (
        "Nothing breaks; the size is just invisible in review (DPL501 is where it matters)."
    )
    fix_title = "Write the library's default pool size explicitly"

    def check(self, project: Project) -> Iterator[Finding]:
        context = versions(project)
        # A pool rebuilt on every request is DPL101's finding; its size is beside the point.
        per_call = {(f.summary.path, f.site.span) for f in per_call_sites(project, "pool")}
        for pool in pool_calls(project):
            if (pool.summary.path, pool.fact.span) in per_call:
                continue
            states = pool.states(project, "size")
            if not any(k.role == "size" for k in pool.call.knobs):
                states = pool.states(project, "bound")
            if any(s.state != "missing" for s in states):
                continue  # one of the size keywords is written: the size is a decision
            for state in states:
                knob = state.knob
                if not is_number(knob.default):
                    continue
                default = literal_code(knob.default)
                if knob.fix_keyword or knob.keywords:
                    advice = f"write {knob.fix_keyword or knob.keywords[0]}={default}"
                else:
                    advice = f"add ?{knob.url_params[-1]}={default} to the URL"
                described = context.describe(knob, pool.call.library, pool.summary.path)
                message = (
                    f"`{pool.fact.callee}()` leaves {knob.label} to the library default "
                    f"({described}); {advice} so the pool size is a decision{state.note}"
                )
                safety = "safe"
                if not pool.call.server_scheme(pool.options.scheme):
                    # `pool_size=` raises TypeError on a pool class without it (SQLite's).
                    safety = "unsafe"
                    message += (
                        "; fix unsafe: the URL is not known to be a server database's, and "
                        "a SQLite engine rejects pool keywords"
                    )
                request = pool.fix_request(knob, literal_code(knob.default), safety)
                yield Finding(
                    pool.summary.path, pool.fact.span, self.code, message, fix_request=request
                )
                break
