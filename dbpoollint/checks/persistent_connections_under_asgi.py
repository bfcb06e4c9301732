from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import PurePath

from dbpoollint.analysis.contexts import LONG_LIVED
from dbpoollint.checks.base import Finding, Project, Rule
from dbpoollint.checks.knobs import persistent_databases

# Files that say how the project is served, and the command lines that mean ASGI.
SERVING_FILES = re.compile(r"^(Procfile|Dockerfile(\..*)?|(docker-)?compose.*\.ya?ml)$")
ASGI_SERVER = re.compile(
    r"\b(uvicorn|daphne|hypercorn|granian)\b[^\n]*\basgi\b"
    r"|\bgunicorn\b[^\n]*\basgi\b[^\n]*(-k|--worker-class)[ =\"',]*uvicorn"
    r"|\bgunicorn\b[^\n]*(-k|--worker-class)[ =\"',]*uvicorn[^\n]*\basgi\b"
)


def asgi_evidence(files: Mapping[str, str]) -> str | None:
    """`Procfile: web: uvicorn mysite.asgi:application`, or None when not served by ASGI."""
    for path in sorted(files):
        name = PurePath(path).name
        if not SERVING_FILES.match(name):
            continue
        for line in files[path].splitlines():
            if line.lstrip().startswith("#"):
                continue
            if ASGI_SERVER.search(line):
                return f"{name}: `{line.strip()}`"
    return None


class PersistentConnectionsUnderAsgi(Rule):
    """
    ## What it does
    Finds Django `DATABASES` entries with persistent connections (`CONN_MAX_AGE` non-zero or
    `None`, also via `dj_database_url.config(conn_max_age=...)`) and no `OPTIONS["pool"]`, in a
    project served by ASGI: `asgi.py` run by uvicorn, daphne, hypercorn or gunicorn with
    `-k uvicorn.workers.UvicornWorker`, as read from a `Procfile`, a `Dockerfile` `CMD`, or a
    docker-compose `command`.

    ## Why is this bad?
    Under ASGI, Django runs sync code (the ORM) in a thread pool, and every thread keeps its own
    persistent connection, which is only closed at the end of a request in that same thread.
    Connections pile up per thread and per event loop until the server refuses new ones.
    Django 5.1 added a real connection pool for PostgreSQL (`OPTIONS={"pool": True}` with
    psycopg 3), which requires `CONN_MAX_AGE = 0`.

    ## Example
    ```python
    # Procfile: web: uvicorn mysite.asgi:application
    DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "CONN_MAX_AGE": 600}}
    ```

    ## Use instead
    ```python
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "CONN_MAX_AGE": 0,
            "OPTIONS": {"pool": True},
        }
    }
    ```

    ## Fix safety
    No fix: moving to `OPTIONS["pool"]` needs psycopg 3, Django 5.1+ and a pool size that fits
    the server; the message points there.

    ## Options
    - How this is decided: only serving commands in `Procfile`, `Dockerfile*` and
      `docker-compose*.yml`/`compose*.yml` under the checked paths are read, and the command
      must name an `asgi` module. WSGI (`gunicorn mysite.wsgi`) is never reported. SQLite
      entries and entries built by helpers (`env.db()`) are skipped.

    ## References
    - [Django: persistent connections and ASGI](https://docs.djangoproject.com/en/stable/ref/databases/#persistent-connections)
    - [Django 5.1: connection pools](https://docs.djangoproject.com/en/5.1/ref/databases/#connection-pool)
    """

    code = "DPL206"
    name = "persistent-connections-under-asgi"
    contexts = LONG_LIVED
    severity = "error"
    severity_reason = "Connections pile up per event-loop thread until the server refuses them."

    def check(self, project: Project) -> Iterator[Finding]:
        evidence = asgi_evidence(project.files)
        if evidence is None:
            return
        for summary, database in persistent_databases(project):
            if database.options_pool is not None:
                continue
            assert database.conn_max_age is not None
            message = (
                f"DATABASES[{database.alias!r}] keeps connections open "
                f"(CONN_MAX_AGE={database.conn_max_age.code}) under ASGI ({evidence}): "
                f"every worker thread keeps its own and they leak; use CONN_MAX_AGE=0 with "
                f'OPTIONS={{"pool": True}} (Django 5.1+, psycopg 3)'
            )
            yield Finding(summary.path, database.span, self.code, message)
