"""`dbpoollint init`: write a commented `[tool.dbpoollint]` table into pyproject.toml.

tomlkit keeps everything already in the file (comments, order, formatting) byte for byte.
"""

from __future__ import annotations

from pathlib import Path

import tomlkit
from tomlkit.exceptions import ParseError
from tomlkit.items import Table

from dbpoollint.checks.knobs import FIX_VALUE_DEFAULTS
from dbpoollint.config import ConfigError
from dbpoollint.writer import write_atomically


def _our_table() -> Table:
    table = tomlkit.table()
    table.add(
        tomlkit.comment("dbpoollint: database connection-pool checks. `dbpoollint rules` lists")
    )
    table.add(
        tomlkit.comment("the codes; the default selection is every rule but the opinionated 9xx.")
    )
    table.add(tomlkit.comment('select = ["DPL"]'))
    table.add("extend-select", tomlkit.array())
    table.add("ignore", tomlkit.array())
    table.add(tomlkit.comment("Per-file ignores, e.g. scripts may open a connection per run:"))
    table.add(tomlkit.comment('per-file-ignores = { "scripts/*" = ["DPL102"] }'))
    table.add("extend-exclude", tomlkit.array())
    table.add(
        tomlkit.comment("Fixes marked unsafe change behaviour; apply them with --unsafe-fixes.")
    )
    table.add("unsafe-fixes", False)
    table.add(tomlkit.comment('Your own rule packs: packs = ["dbpoollint/inhouse.toml"]'))

    values = tomlkit.table()
    values.add(tomlkit.comment("The numbers the DPL201/203/204 fixes write (timeouts in seconds)."))
    for key, number in sorted(FIX_VALUE_DEFAULTS.items()):
        values.add(key, number)
    table.add("fix-values", values)

    budget = tomlkit.table()
    budget.add(tomlkit.comment("The connection budget (DPL501, `dbpoollint budget`). The server's"))
    budget.add(tomlkit.comment("limit, else what compose / postgresql.conf commit:"))
    budget.add(tomlkit.comment("max-connections = 100"))
    budget.add(tomlkit.comment("Connections kept back (PostgreSQL keeps 3 for superusers):"))
    budget.add(tomlkit.comment("reserved-connections = 3"))
    budget.add(tomlkit.comment("Counts the deployment files do not say: replicas per process,"))
    budget.add(tomlkit.comment("and workers where the count is the CPU's (Celery's default):"))
    budget.add(tomlkit.comment("replicas = 1"))
    budget.add(tomlkit.comment("workers = 4"))
    table.add("budget", budget)
    return table


def write_init(pyproject: Path) -> str:
    """Add the table; return what was done, for the user. Raises ConfigError when it cannot."""
    original = pyproject.read_bytes() if pyproject.exists() else b""
    try:
        document = tomlkit.parse(original.decode("utf-8"))
    except (ParseError, UnicodeDecodeError) as error:
        raise ConfigError(f"{pyproject}: invalid TOML, not changed: {error}") from error
    tool = document.get("tool")
    if tool is not None and "dbpoollint" in tool:
        raise ConfigError(f"{pyproject}: already has a [tool.dbpoollint] table; not changed")
    if tool is None:
        tool = tomlkit.table(is_super_table=True)
        document.add("tool", tool)
    tool.add("dbpoollint", _our_table())
    data = tomlkit.dumps(document).encode("utf-8")
    if original:
        write_atomically(pyproject, original, data)
        return f"added [tool.dbpoollint] to {pyproject}"
    pyproject.write_bytes(data)
    return f"created {pyproject} with [tool.dbpoollint]"
