"""`dbpoollint budget` output: one table (text) or the same data as JSON."""

from __future__ import annotations

import json
from typing import Any

from dbpoollint.deploy.budget import Budget, Row, ServerBudget, server_side
from dbpoollint.deploy.model import Factor, Process

HEADERS = ("pool", "where", "per process", "processes (from)", "total")


def _process_text(row: Row) -> str:
    if row.process is None:
        return "1 (assumed: no process found that imports it)"
    process = row.process
    return (
        f"{row.count if row.count is not None else '?'} = {_short(process.workers)} "
        f"{process.server} workers x {_short(process.replicas)} replicas"
    )


def _short(factor: Factor) -> str:
    shown = "?" if factor.value is None else str(factor.value)
    return f"{shown} ({factor.where})" if factor.where else shown


def _limit_text(server: ServerBudget) -> str:
    if server.limit is None:
        return "limit: none known (set [tool.dbpoollint.budget] max-connections)"
    reserved = f" - {server.reserved.describe()} reserved" if server.reserved else ""
    return f"limit: {server.compared_with} {server.limit.describe()}{reserved} = {server.available}"


def render_text(budget: Budget) -> str:
    lines: list[str] = []
    for server in budget.servers:
        total = "unbounded/unknown" if server.total is None else str(server.total)
        lines.append(f"server {server.server}")
        rows = [
            (
                row.pool.name,
                row.pool.where,
                row.pool.maximum.describe(),
                _process_text(row),
                "?" if row.total is None else str(row.total),
            )
            for row in server.rows
        ]
        widths = [min(60, max(len(h), *(len(r[i]) for r in rows))) for i, h in enumerate(HEADERS)]
        for cells in (HEADERS, *rows):
            joined = "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))
            lines.append("  " + joined.rstrip())
        headroom = server.headroom
        verdict = ""
        if headroom is not None:
            verdict = f"; headroom {headroom}" + (" (OVER BUDGET)" if headroom < 0 else "")
        elif server.over:
            verdict = "; OVER BUDGET (a pool has no limit)"
        lines.append(f"  total {total}; {_limit_text(server)}{verdict}")
        lines.append("")
    for pooler, server_total, limits in server_side(budget):
        server_limit = limits[0].max_connections.describe() if limits else "unknown"
        lines.append(
            f"PgBouncer ({pooler.where}): server side {server_total} = "
            f"{pooler.default_pool_size.describe()} x {pooler.pools.describe()}; "
            f"server max_connections {server_limit}"
        )
    if not budget.servers:
        lines.append("no long-lived pool found")
    for process in budget.deployment.processes:
        lines.append(_process_line(process))
    lines.extend(f"note: {note}" for note in budget.notes)
    return "\n".join(lines).rstrip() + "\n"


def _process_line(process: Process) -> str:
    fork = process.forks_after_import
    return (
        f"process {process.name} ({process.where}): {process.server}"
        f"{' ' + process.entry if process.entry else ''}, workers {process.workers.describe()}, "
        f"threads {process.threads.describe()}, replicas {process.replicas.describe()}"
        + (f"; {fork}" if fork else "")
    )


def _factor(factor: Factor | None) -> dict[str, Any] | None:
    if factor is None:
        return None
    return {
        "value": factor.value,
        "where": factor.where,
        "note": factor.note,
        "assumed": factor.assumed,
    }


def render_json(budget: Budget) -> str:
    servers = []
    for server in budget.servers:
        servers.append(
            {
                "server": server.server,
                "total": server.total,
                "compared_with": server.compared_with if server.limit else None,
                "limit": _factor(server.limit),
                "reserved": _factor(server.reserved),
                "available": server.available,
                "headroom": server.headroom,
                "over_budget": server.over,
                "pools": [
                    {
                        "pool": row.pool.name,
                        "filename": row.pool.summary.path,
                        "line": row.pool.call.fact.span.line,
                        "library": row.pool.call.call.library,
                        "per_process": row.pool.maximum.value,
                        "per_process_terms": list(row.pool.maximum.terms),
                        "unbounded": row.pool.maximum.unbounded,
                        "process": row.process.name if row.process else None,
                        "workers": _factor(row.process.workers) if row.process else None,
                        "replicas": _factor(row.process.replicas) if row.process else None,
                        "processes": row.count,
                        "total": row.total,
                    }
                    for row in server.rows
                ],
            }
        )
    processes = [
        {
            "name": p.name,
            "where": p.where,
            "server": p.server,
            "entry": p.entry or None,
            "workers": _factor(p.workers),
            "threads": _factor(p.threads),
            "replicas": _factor(p.replicas),
            "forks_after_import": p.forks_after_import or None,
        }
        for p in budget.deployment.processes
    ]
    data = {"servers": servers, "processes": processes, "notes": budget.notes}
    return json.dumps(data, indent=2) + "\n"
