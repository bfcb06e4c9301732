"""Read a gunicorn config file (`gunicorn.conf.py`): a Python module of settings and hooks.

Only what can be read without running it: `workers = 4`,
`workers = int(os.environ.get("WEB_CONCURRENCY", 4))` (the variable and its default),
`workers = multiprocessing.cpu_count() * 2 + 1` (a count only the machine knows), `threads`,
`preload_app = True`, `wsgi_app = "app:app"`, and the objects the post-fork hooks
(`post_fork`, `post_worker_init`) dispose or close, by their imported names.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

POST_FORK_HOOKS = ("post_fork", "post_worker_init")
RESET_METHODS = frozenset({"dispose", "close", "reset", "closeall", "terminate", "close_all"})
ENV_GETTERS = ("os.environ.get", "os.getenv", "environ.get", "getenv")


@dataclass(frozen=True)
class Setting:
    value: int | bool | str | None  # None: set, but not readable statically
    line: int
    note: str  # the code as written, shortened
    env: str = ""  # the environment variable it reads


@dataclass
class GunicornConfig:
    path: str
    settings: dict[str, Setting] = field(default_factory=dict)
    # hook name -> (line, qualified names it disposes or closes)
    resets: dict[str, tuple[int, set[str]]] = field(default_factory=dict)
    error: str = ""


def read_gunicorn_config(path: str, text: str) -> GunicornConfig:
    config = GunicornConfig(path)
    try:
        tree = ast.parse(text, filename=path)
    except (SyntaxError, ValueError, RecursionError) as error:
        config.error = f"{path}: cannot parse: {error}"
        return config
    imports = _imports(tree)
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
            if isinstance(target, ast.Name):
                config.settings[target.id] = _setting(statement.value, statement.lineno, text)
        elif isinstance(statement, ast.FunctionDef) and statement.name in POST_FORK_HOOKS:
            targets = _reset_targets(statement, imports)
            config.resets[statement.name] = (statement.lineno, targets)
    return config


def _imports(tree: ast.Module) -> dict[str, str]:
    """Local name -> absolute name, for `from app.db import engine` and `import app.db`."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".", 1)[0]
                names[local] = alias.name if alias.asname else local
    return names


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    return ""


def _reset_targets(function: ast.FunctionDef, imports: dict[str, str]) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(function):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in RESET_METHODS
        ):
            name = _dotted(node.func.value)
            if not name:
                continue
            head, _, rest = name.partition(".")
            absolute = imports.get(head, head)
            found.add(f"{absolute}.{rest}" if rest else absolute)
    return found


def _setting(value: ast.expr, line: int, text: str) -> Setting:
    note = (ast.get_source_segment(text, value) or "").strip()
    note = note if len(note) <= 60 else note[:57] + "..."
    if isinstance(value, ast.Constant) and isinstance(value.value, int | bool | str):
        return Setting(value.value, line, note)
    number, env = _env_number(value)
    if env:
        return Setting(number, line, note, env)
    return Setting(None, line, note)


def _env_number(node: ast.expr) -> tuple[int | None, str]:
    """`int(os.environ.get("WEB_CONCURRENCY", 4))` -> (4, "WEB_CONCURRENCY")."""
    if isinstance(node, ast.Call) and _dotted(node.func) in ("int", "bool", "str") and node.args:
        return _env_number(node.args[0])
    if isinstance(node, ast.Call) and _dotted(node.func) in ENV_GETTERS and node.args:
        name = node.args[0]
        if isinstance(name, ast.Constant) and isinstance(name.value, str):
            default = node.args[1] if len(node.args) > 1 else None
            number = None
            if isinstance(default, ast.Constant) and isinstance(default.value, int | str):
                try:
                    number = int(default.value)
                except ValueError:
                    number = None
            return number, name.value
    return None, ""
