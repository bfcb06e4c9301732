"""Run context: which kind of process runs a module (and, for CLI commands, a function).

- *service*: a web app (ASGI/WSGI), a worker or a consumer: lives for days, serves many calls;
- *one-off*: a migration (Alembic `versions/` and `env.py`, Django `migrations/`), a management
  command, a click/typer/argparse CLI, a script under `scripts/` `tools/` `bin/`, a module whose
  `if __name__ == "__main__":` runs it as a script;
- *examples*: sample code and docs (`examples/`, `docs/`, `*_example.py`), and the settings a
  test or CI run uses (`configuration_testing.py`, `settings_test.py`, `settings/testing.py`,
  `ci_settings.py`): no long-lived service is configured by them.

Rules about long-lived pools (limits, timeouts, shutdown) judge services only: a script's
connections end with its process. Per-call rules judge every context but examples. Folders count
only below the path the user named (as for tests), so `dbpoollint check examples/` checks them.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
from collections.abc import Iterable
from pathlib import Path

from dbpoollint.analysis.model import ClientCallFact, DecoratorFact, ModuleSummary
from dbpoollint.discovery import parts_below, resolved

SERVICE = "service"
ONE_OFF = "one-off"
EXAMPLES = "examples"
# Not a context of its own: widens DPL301 to sync clients of a process that just exits.
PROCESS_EXIT = "process-exit"
# What a user may add with the `contexts` configuration key.
WIDENING = (ONE_OFF, EXAMPLES, PROCESS_EXIT)

EXAMPLE_DIRECTORIES = frozenset({"examples", "example", "docs", "doc", "samples", "sample"})
EXAMPLE_FILES = (
    "*_example.py",
    "*_examples.py",
    "example_*.py",
    "*_sample.py",
    "sample_*.py",
    "*.example.py",
    "*_example_*.py",
)
# One match per file instead of one `fnmatch` per pattern.
_EXAMPLE_FILE = re.compile("|".join(fnmatch.translate(pattern) for pattern in EXAMPLE_FILES))
# Settings for a test or CI run: `configuration_testing.py`, `ci_settings.py`, or a
# `testing.py` module of a `settings/` package.
_SETTINGS_WORDS = r"(?:settings|configuration|config|conf)"
_TEST_WORDS = r"(?:test|tests|testing|ci)"
TEST_SETTINGS_FILE = re.compile(
    rf"^(?:{_SETTINGS_WORDS}_{_TEST_WORDS}|{_TEST_WORDS}_{_SETTINGS_WORDS})\.py$", re.IGNORECASE
)
SETTINGS_DIRECTORIES = frozenset({"settings", "configuration", "config", "conf"})
# In a settings package: `test.py`, `testing.py`, `testmysql.py`, `test_postgres.py`, `ci.py`.
TEST_SETTINGS_MODULE = re.compile(r"^(?:test\w*|ci|ci_\w+)\.py$", re.IGNORECASE)
ONE_OFF_DIRECTORIES = frozenset({"scripts", "script", "tools", "bin", "migrations", "alembic"})
ONE_OFF_FILES = frozenset({"manage.py", "setup.py", "noxfile.py", "fabfile.py", "dodo.py"})

# Imports that make a module part of a migration run, wherever it lives.
MIGRATION_MODULES = ("alembic", "django.db.migrations")
CLI_MODULES = ("click", "typer", "argparse", "asyncclick", "fire", "docopt")
DJANGO_COMMAND_BASES = frozenset(
    {
        "django.core.management.base.BaseCommand",
        "django.core.management.BaseCommand",
        "BaseCommand",
    }
)

_MAIN_GUARD = re.compile(rb"^if\s+__name__\s*==\s*['\"]__main__['\"]\s*:", re.MULTILINE)
# Code that makes the module a service even though it also runs as `__main__`: it starts a
# server or an endless consumer loop, or builds the web/task app itself.
_SERVES = re.compile(
    rb"\b(?:uvicorn\.run|hypercorn|waitress\.serve|web\.run_app|serve_forever|run_forever"
    rb"|start_consuming|app\.run\(|while\s+True\s*:"
    rb"|(?:Flask|Quart|FastAPI|Starlette|Sanic|Litestar|Celery)\()"
)


def path_context(path: Path, base: Path | None = None) -> str:
    """The context the path alone tells: examples, one-off, or "" (undecided)."""
    real_base = str(resolved(base)) if base is not None else None
    return path_context_at(str(path), str(resolved(path)), real_base)


def path_context_at(spelled: str, real: str, real_base: str | None) -> str:
    """:func:`path_context` of a path as spelled, by its real path and the base's."""
    spelled_folder, _, name = spelled.rpartition(os.sep)
    real_folder = real.rpartition(os.sep)[0] or os.sep
    folders = _folders_below(real_folder, real_base) if real_base is not None else None
    if folders is None:
        folders = tuple(part.lower() for part in spelled_folder.split(os.sep))
    if any(part in EXAMPLE_DIRECTORIES for part in folders) or _EXAMPLE_FILE.match(name):
        return EXAMPLES
    if _test_settings(name, real_folder):
        return EXAMPLES
    if name in ONE_OFF_FILES or any(part in ONE_OFF_DIRECTORIES for part in folders):
        return ONE_OFF
    if "management" in folders and "commands" in folders:
        return ONE_OFF
    if "versions" in folders and name != "__init__.py" and _under_alembic(Path(spelled)):
        return ONE_OFF
    return ""


@functools.lru_cache(maxsize=4096)
def _folders_below(folder: str, base: str) -> tuple[str, ...] | None:
    """The folders from `base` down to `folder`, lowercased; None when it is not below.
    Once per folder: `relative_to` per file was a tenth of a run that replays its report."""
    parts = parts_below(folder, base)
    return None if parts is None else tuple(part.lower() for part in parts)


def _test_settings(name: str, real_folder: str) -> bool:
    """The settings package is the file's own folder, wherever the user's path starts."""
    if TEST_SETTINGS_FILE.match(name):
        return True
    if not TEST_SETTINGS_MODULE.match(name):
        return False
    return real_folder.rpartition(os.sep)[2].lower() in SETTINGS_DIRECTORIES


def _under_alembic(path: Path) -> bool:
    """An Alembic `versions/` folder sits next to `env.py` (checked on disk when it exists)."""
    folder = path.parent
    while folder.name and folder.name != "versions":
        folder = folder.parent
    return (folder.parent / "env.py").is_file()


def module_markers(data: bytes, imported_modules: Iterable[str]) -> frozenset[str]:
    """What the source says about its process: "main", "serves", "cli", "migration"."""
    markers = set()
    if _MAIN_GUARD.search(data):
        markers.add("main")
    if _SERVES.search(data):
        markers.add("serves")
    for module in imported_modules:
        top = module.split(".", 1)[0]
        if top in CLI_MODULES:
            markers.add("cli")
        if any(module == m or module.startswith(f"{m}.") for m in MIGRATION_MODULES):
            markers.add("migration")
    return frozenset(markers)


def classify(summary: ModuleSummary, from_path: str, markers: frozenset[str]) -> None:
    """Set `summary.run_context` and `summary.one_off_functions`."""
    summary.one_off_functions = frozenset(_one_off_functions(summary))
    serving = bool(summary.roots or summary.lifecycle.hooks or "serves" in markers)
    if from_path:
        summary.run_context = from_path
    elif "migration" in markers or summary.urls.is_alembic_env:
        summary.run_context = ONE_OFF
    elif "main" in markers and not serving:
        summary.run_context = ONE_OFF  # `python thing.py` runs it and exits
    elif "cli" in markers and not serving and summary.one_off_functions:
        summary.run_context = ONE_OFF  # a module of CLI commands (an entry point runs it)
    else:
        summary.run_context = SERVICE


def _one_off_functions(summary: ModuleSummary) -> set[str]:
    """CLI commands and Django management command methods, and the functions nested in them."""
    found = {
        key
        for key, fact in summary.functions.items()
        if any(_is_cli_decorator(d) for d in fact.decorators)
    }
    for class_key, cls in summary.classes.items():
        if cls.base_qualnames & DJANGO_COMMAND_BASES:
            found.update(m for m in summary.functions if m.startswith(f"{class_key}."))
    nested = {
        key
        for key in summary.functions
        if any(key.startswith(f"{outer}.<locals>.") for outer in found)
    }
    return found | nested


def _is_cli_decorator(decorator: DecoratorFact) -> bool:
    for name in decorator.qualnames:
        top = name.split(".", 1)[0]
        if top in ("click", "asyncclick", "typer") and not name.endswith(
            (".pass_context", ".pass_obj")
        ):
            return True
    if decorator.method not in ("command", "group"):
        return False
    receiver_tops = {c.split(".", 1)[0] for c in decorator.receiver_classes}
    # `@cli.command()` on a click group, `@app.command()` on a `typer.Typer()`,
    # Flask's `@app.cli.command()` / `@bp.cli.command()`, Flask-Script's `@manager.command`.
    return bool(receiver_tops & {"click", "asyncclick", "typer", "flask_script"}) or (
        decorator.receiver.rsplit(".", 1)[-1] in ("cli", "manager")
    )


def context_of(summary: ModuleSummary, function: str | None) -> str:
    if summary.run_context == SERVICE and function in summary.one_off_functions:
        return ONE_OFF
    return summary.run_context


def judges(rule_contexts: frozenset[str], widened: frozenset[str], context: str) -> bool:
    """Does a rule judging `rule_contexts` (plus what the user widened) judge `context`?"""
    if context == EXAMPLES:
        return EXAMPLES in widened
    return context in rule_contexts or context in widened


# What the rules about long-lived pools judge (2xx, DPL301, DPL303).
LONG_LIVED = frozenset({SERVICE})


# --- lifetime: limits, timeouts and checks are about pools that outlive one call -------------


def instantiated_at_module_level(summaries: Iterable[ModuleSummary]) -> frozenset[str]:
    """Class names some module instantiates at module level (`db = Database(url)`)."""
    names = set()
    for summary in summaries:
        for value in summary.constants.values():
            head = value.code.split("(", 1)[0] if value.kind == "other" else ""
            if head and "(" in value.code:
                names.add(head.rsplit(".", 1)[-1])
    return frozenset(names)


def lives_long(summary: ModuleSummary, fact: ClientCallFact, instantiated: frozenset[str]) -> bool:
    """Module level, a lazily initialised global, a cached or lifespan function, a factory
    (whose callers decide: DPL103 reports per-call ones), or `self.x` of a class some module
    instantiates once, or a call whose result nothing local holds (`await Tortoise.init(...)`
    keeps its pool in the library). A local engine built and dropped in one call is not a
    long-lived pool."""
    if fact.function is None or fact.discarded:
        return True
    function = summary.functions.get(fact.function)
    if function is not None and function.barrier:
        return True
    if fact.target and fact.target in summary.lifecycle.globals_declared.get(fact.function, ()):
        return True
    if any(hook.function == fact.function for hook in summary.lifecycle.hooks):
        return True
    if any(site.span == fact.span and site.returned for site in summary.sites):
        return True
    target = fact.target or ""
    if target.startswith(("app.", "self.app.", "app.state.", "request.app.")):
        return True  # kept on the application object, in a startup hook
    if target.startswith("self.") and function is not None and function.class_key:
        return function.class_key.rsplit(".", 1)[-1] in instantiated
    return False


# --- run once: one-off entry points and what only they call ---------------------------------

# A script's `main`, a migration's `upgrade`/`downgrade`, a management command's `handle`: each
# runs once per process, which ends right after.
ENTRY_POINTS = frozenset({"main", "upgrade", "downgrade", "handle"})


def run_once(summary: ModuleSummary) -> frozenset[str]:
    """Functions of a one-off module that run once per process: its entry points and the
    functions only they (or other run-once functions) call. A connection such a function never
    closes is closed by the exit a moment later; a helper a loop may call is not among them
    (it has a caller outside this set, or none that is known)."""
    # A click/typer command runs once per invocation of the CLI, whatever the module.
    commands = {
        key
        for key, function in summary.functions.items()
        if any(_is_cli_decorator(d) for d in function.decorators)
    }
    if summary.run_context != ONE_OFF and not commands:
        return frozenset()
    callers: dict[str, set[str]] = {}
    for key, function in summary.functions.items():
        for reference in function.references:
            callers.setdefault(reference, set()).add(key)
    once = set(commands)
    if summary.run_context == ONE_OFF:
        once.update(k for k in summary.functions if k.rsplit(".", 1)[-1] in ENTRY_POINTS)
    changed = True
    while changed:
        changed = False
        for key in summary.functions:
            known = callers.get(key)
            if key not in once and known and known <= once:
                once.add(key)
                changed = True
    return frozenset(once)
