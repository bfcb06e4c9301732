"""Which modules a process runs: the import graph from its entry module, over the summaries.

Modules the prefilter did not parse have no summary, so a chain through one of them is cut;
when the entry module itself has no summary the answer is "unknown" (None) and callers assume
the process may run every module.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from pathlib import PurePath

from dbpoollint.checks.base import Project
from dbpoollint.deploy.model import Process

ONE_OFF_PARTS = ("scripts", "migrations", "versions", "bin", "tools")
ONE_OFF_FILES = ("manage.py", "env.py", "setup.py", "conftest.py")


def one_off(path: str, module: str) -> bool:
    """Scripts, migrations, management entry points: not a long-lived process's module.

    Judged on the module's dotted name and the file's own folder, never on the folders above
    the project (a checkout under `~/tools/` is not a script)."""
    parts = PurePath(path).parts
    folders = {*module.split(".")[:-1], *(parts[-2:-1])}
    return bool(folders & set(ONE_OFF_PARTS)) or parts[-1] in ONE_OFF_FILES


def reach(project: Project, process: Process) -> set[str] | None:
    """Modules the process imports, from its entry (and, for Celery, every task module)."""
    modules = {s.module for s in project.summaries}
    starts = [m for m in candidates(process.entry) if m in modules][:1]
    if process.server.startswith("celery"):
        starts += [
            s.module for s in project.summaries if any("celery" in r.label.lower() for r in s.roots)
        ]
    if not starts:
        return None
    return reach_from(project, starts)


def reach_from(project: Project, starts: Iterable[str]) -> set[str]:
    modules = {s.module: s for s in project.summaries}
    seen: set[str] = set()
    queue = deque(starts)
    while queue:
        module = queue.popleft()
        if module in seen or module not in modules:
            continue
        seen.add(module)
        for imported in modules[module].process.imports:
            for candidate in candidates(imported):
                if candidate in modules and candidate not in seen:
                    queue.append(candidate)
    return seen


def candidates(name: str) -> list[str]:
    """`app.db.engine` -> app.db.engine, app.db, app: a name, its module, its packages."""
    parts = name.split(".") if name else []
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]
