"""click commands only: parse options, call the engine, print, set the exit code."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from dbpoollint import __version__
from dbpoollint.checks import ALL_RULES, RULES_BY_CODE
from dbpoollint.config import ConfigError, Settings, find_config, load_settings
from dbpoollint.discovery import (
    DiscoveryError,
    Excludes,
    discover,
    is_test_file,
    module_name,
)
from dbpoollint.engine import FileInput, check_files, read_input
from dbpoollint.output import FORMATTERS
from dbpoollint.output.text import statistics, summary_line
from dbpoollint.packs import PackError, load_packs
from dbpoollint.selection import Selection, SelectionError

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str) -> NoReturn:
    click.echo(f"dbpoollint: error: {message}", err=True)
    sys.exit(EXIT_ERROR)


def _user_errors(function: F) -> F:
    """Errors a user can cause become one line on stderr and exit code 2, never a traceback."""

    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (ConfigError, PackError, DiscoveryError, SelectionError) as error:
            _fail(str(error))
        except RecursionError:
            _fail("internal error: recursion limit reached; please report this file")
        except Exception as error:
            if os.environ.get("DBPOOLLINT_DEBUG"):
                raise
            _fail(f"internal error: {type(error).__name__}: {error} (set DBPOOLLINT_DEBUG=1)")

    return wrapper  # type: ignore[return-value]


def _codes(values: Sequence[str]) -> list[str]:
    """`--select DPL101,DPL102 --select DPL2` -> ["DPL101", "DPL102", "DPL2"]."""
    return [c.strip().upper() for v in values for c in v.split(",") if c.strip()]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="dbpoollint")
def main() -> None:
    """Find database connection-pool mistakes in Python services."""


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--select", multiple=True, help="Rule codes or prefixes to enable (comma-separated).")
@click.option("--extend-select", multiple=True, help="Codes to enable on top of the selection.")
@click.option("--ignore", multiple=True, help="Rule codes or prefixes to disable.")
@click.option(
    "--output-format",
    type=click.Choice(sorted(FORMATTERS)),
    default="text",
    show_default=True,
)
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when findings remain.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A pyproject.toml or dbpoollint.toml to use instead of searching for one.",
)
@click.option("--quiet", "-q", is_flag=True, help="Print findings only, no summary.")
@click.option("--statistics", "show_statistics", is_flag=True, help="Count findings per rule.")
@click.option("--stdin-filename", help="The file name to report for source read from `-`.")
@click.option("--force-exclude", is_flag=True, help="Apply excludes to paths given directly.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), help="Worker processes (default: CPUs).")
@_user_errors
def check(
    paths: tuple[Path, ...],
    select: tuple[str, ...],
    extend_select: tuple[str, ...],
    ignore: tuple[str, ...],
    output_format: str,
    exit_zero: bool,
    config_path: Path | None,
    quiet: bool,
    show_statistics: bool,
    stdin_filename: str | None,
    force_exclude: bool,
    jobs: int | None,
) -> None:
    """Check PATHS (default: the current directory) for connection-pool mistakes."""
    targets = list(paths) or [Path(".")]
    reading_stdin = targets == [Path("-")]
    if config_path is not None and not config_path.is_file():
        raise ConfigError(f"{config_path}: configuration file not found")
    anchor = Path(stdin_filename) if reading_stdin and stdin_filename else targets[0]
    if reading_stdin and not stdin_filename:
        anchor = Path(".")
    settings = load_settings(config_path or find_config(anchor))
    selection = Selection(
        select=_codes(select) if select else settings.select,
        extend_select=[*settings.extend_select, *_codes(extend_select)],
        ignore=[*settings.ignore, *_codes(ignore)],
        per_file_ignores=settings.per_file_ignores,
    )
    packs = load_packs(settings.packs)

    inputs = (
        _stdin_input(stdin_filename)
        if reading_stdin
        else _file_inputs(targets, settings, force_exclude)
    )
    if not inputs:
        click.echo("warning: No Python files found under the given path(s)", err=True)
        sys.exit(EXIT_CLEAN)
    result = check_files(
        inputs, packs, selection, extra_packs=settings.packs, jobs=jobs, force_parse=reading_stdin
    )
    findings = result.findings

    click.echo(FORMATTERS[output_format](findings), nl=False)
    if show_statistics and findings:
        click.echo(statistics(findings), nl=False, err=output_format != "text")
    if output_format in ("text", "full") and not quiet:
        click.echo(summary_line(findings))
    sys.exit(EXIT_FINDINGS if findings and not exit_zero else EXIT_CLEAN)


def _stdin_input(stdin_filename: str | None) -> list[FileInput]:
    data = sys.stdin.buffer.read()
    display = stdin_filename or "-"
    path = Path(stdin_filename) if stdin_filename else Path("stdin.py")
    return [FileInput(display, data, module_name(path), is_test_file(path))]


def _file_inputs(targets: list[Path], settings: Settings, force_exclude: bool) -> list[FileInput]:
    patterns = settings.exclude or []
    excludes = Excludes([*patterns, *settings.extend_exclude], settings.root)
    files = discover(targets, excludes, settings.respect_gitignore, force_exclude)
    return [
        read_input(path, module_name(path), is_test_file(path, base), str(path))
        for path, base in files
    ]


@main.command()
@click.argument("code")
@_user_errors
def rule(code: str) -> None:
    """Print the documentation of rule CODE (e.g. DPL101, or its name)."""
    wanted = code.strip()
    found = RULES_BY_CODE.get(wanted.upper()) or next(
        (r for r in ALL_RULES if r.name == wanted.lower()), None
    )
    if found is None:
        _fail(f"unknown rule `{code}`; `dbpoollint rules` lists them")
    click.echo(f"# {found.name} ({found.code})\n")
    fix = f"Fix: {found.fix_title}" if found.fix_title else "Fix: none"
    click.echo(f"{fix}\n")
    click.echo(found.docs())


@main.command()
@click.option("--output-format", type=click.Choice(["text", "json"]), default="text")
@_user_errors
def rules(output_format: str) -> None:
    """List every rule."""
    if output_format == "json":
        data = [
            {
                "code": r.code,
                "name": r.name,
                "summary": r.summary(),
                "fix": r.fix_title,
                "enabled_by_default": r.enabled_by_default,
            }
            for r in ALL_RULES
        ]
        click.echo(json.dumps(data, indent=2))
        return
    for r in ALL_RULES:
        click.echo(f"{r.code}  {r.name:<26} {r.summary().splitlines()[0]}")
