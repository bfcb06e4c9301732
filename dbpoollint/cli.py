"""click commands only: parse options, call the engine, print, set the exit code."""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from functools import wraps
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from dbpoollint import __version__
from dbpoollint.checks import ALL_RULES, RULES_BY_CODE
from dbpoollint.checks.base import Finding
from dbpoollint.config import ConfigError, Settings, find_config, load_settings
from dbpoollint.discovery import (
    DiscoveryError,
    Excludes,
    discover,
    discover_project_files,
    is_test_file,
    module_name,
    pins_above,
)
from dbpoollint.engine import FileInput, check_files, read_input
from dbpoollint.fixing import apply_fixes, attach_fixes
from dbpoollint.init_config import write_init
from dbpoollint.output import FORMATTERS
from dbpoollint.output.text import statistics, summary_line
from dbpoollint.packs import PackError, PackSet, load_packs
from dbpoollint.selection import Selection, SelectionError
from dbpoollint.writer import StaleFileError, write_atomically

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


def _check_options(function: F) -> F:
    options = [
        click.argument("paths", nargs=-1, type=click.Path(path_type=Path)),
        click.option("--select", multiple=True, help="Rule codes or prefixes to enable."),
        click.option("--extend-select", multiple=True, help="Codes to enable on top."),
        click.option("--ignore", multiple=True, help="Rule codes or prefixes to disable."),
        click.option(
            "--output-format",
            type=click.Choice(sorted(FORMATTERS)),
            default="text",
            show_default=True,
        ),
        click.option("--exit-zero", is_flag=True, help="Exit 0 even when findings remain."),
        click.option(
            "--config",
            "config_path",
            type=click.Path(path_type=Path, dir_okay=False),
            help="A pyproject.toml or dbpoollint.toml to use instead of searching for one.",
        ),
        click.option("--quiet", "-q", is_flag=True, help="Print findings only, no summary."),
        click.option("--statistics", "show_statistics", is_flag=True, help="Count per rule."),
        click.option("--stdin-filename", help="The file name to report for source read from `-`."),
        click.option(
            "--force-exclude", is_flag=True, help="Apply excludes to paths given directly."
        ),
        click.option("--jobs", "-j", type=click.IntRange(min=1), help="Worker processes."),
        click.option("--unsafe-fixes", is_flag=True, help="Also apply fixes marked unsafe."),
        click.option("--diff", is_flag=True, help="Print the fixes as a diff; write nothing."),
        click.option(
            "--exit-non-zero-on-fix", is_flag=True, help="Exit 1 when a fix changed a file."
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@main.command()
@_check_options
@click.option("--fix", is_flag=True, help="Apply safe fixes (and unsafe ones with --unsafe-fixes).")
@_user_errors
def check(fix: bool, **options: Any) -> None:
    """Check PATHS (default: the current directory) for connection-pool mistakes."""
    _run(fix=fix, **options)


@main.command(name="fix")
@_check_options
@_user_errors
def fix_command(**options: Any) -> None:
    """Apply fixes to PATHS: the one-shot refactor (same as `check --fix`)."""
    _run(fix=True, summary=True, **options)


def _run(
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
    unsafe_fixes: bool,
    diff: bool,
    exit_non_zero_on_fix: bool,
    fix: bool,
    summary: bool = False,
) -> None:
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
    allow_unsafe = unsafe_fixes or settings.unsafe_fixes

    if reading_stdin:
        inputs = _stdin_input(stdin_filename)
    else:
        inputs = _file_inputs(targets, settings, force_exclude)
    if not inputs:
        click.echo("warning: No Python files found under the given path(s)", err=True)
        sys.exit(EXIT_CLEAN)

    project_files = {} if reading_stdin else _project_files(targets, settings)

    # The one-shot refactor over a large tree shows progress on a terminal.
    show_progress = summary and sys.stderr.isatty() and len(inputs) >= PROGRESS_THRESHOLD

    def run_check(files: list[FileInput], with_edits: bool) -> list[Finding]:
        with _progress(show_progress, len(files)) as advance:
            result = check_files(
                files,
                packs,
                selection,
                settings.packs,
                jobs=jobs,
                force_parse=reading_stdin,
                project_files=project_files,
                progress=advance,
                fix_values=settings.fix_values,
            )
        sources = {f.path: f.data for f in files if f.data is not None}
        return attach_fixes(result.findings, sources, packs, with_edits)

    show_edits = output_format == "json"
    findings = run_check(inputs, show_edits and not (fix or diff))
    changed_files = 0
    if fix or diff:
        originals = {f.path: f.data for f in inputs if f.data is not None}
        current, fixed, skipped = _fix_rounds(inputs, findings, packs, allow_unsafe, run_check)
        final = {f.path: f.data for f in current if f.data is not None}
        changed = {p: final[p] for p in final if final[p] != originals.get(p)}
        if diff:
            for path in sorted(changed):
                click.echo(_unified_diff(path, originals[path], changed[path]), nl=False)
            sys.exit(EXIT_FINDINGS if changed else EXIT_CLEAN)
        if reading_stdin:
            sys.stdout.buffer.write(final.get(inputs[0].path, b""))
            sys.exit(EXIT_CLEAN)
        changed_files = _write_all({p: (originals[p], data) for p, data in changed.items()})
        if changed:
            findings = run_check([_reread(item) for item in inputs], show_edits)
        elif show_edits:
            findings = run_check(inputs, show_edits)
        if summary or not quiet:
            unsafe_note = (
                f"; {skipped} unsafe fix(es) skipped (enable with --unsafe-fixes)"
                if skipped
                else ""
            )
            click.echo(
                f"Fixed {fixed} finding(s) in {changed_files} file(s); "
                f"{len(findings)} left{unsafe_note}.",
                err=output_format not in ("text", "full"),
            )

    click.echo(FORMATTERS[output_format](findings), nl=False)
    if show_statistics and findings:
        click.echo(statistics(findings), nl=False, err=output_format != "text")
    if output_format in ("text", "full") and not quiet:
        click.echo(summary_line(findings))
    if findings and not exit_zero:
        sys.exit(EXIT_FINDINGS)
    sys.exit(EXIT_FINDINGS if changed_files and exit_non_zero_on_fix else EXIT_CLEAN)


MAX_FIX_ROUNDS = 5
PROGRESS_THRESHOLD = 200


@contextlib.contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Callable[[int], None] | None]:
    if not enabled:
        yield None
        return
    with click.progressbar(length=total, label="Analysing", file=sys.stderr) as bar:
        yield bar.update


def _fix_rounds(
    inputs: list[FileInput],
    findings: list[Finding],
    packs: PackSet,
    allow_unsafe: bool,
    run_check: Callable[[list[FileInput], bool], list[Finding]],
) -> tuple[list[FileInput], int, int]:
    """Apply fixes in memory, re-checking between rounds, until nothing more changes."""
    current = list(inputs)
    fixed = skipped = 0
    for _ in range(MAX_FIX_ROUNDS):
        sources = {f.path: f.data for f in current if f.data is not None}
        outcome = apply_fixes(findings, sources, packs, allow_unsafe)
        skipped = outcome.skipped_unsafe
        if not outcome.changed:
            break
        fixed += outcome.fixed
        current = [
            dataclasses.replace(f, data=outcome.changed[f.path]) if f.path in outcome.changed else f
            for f in current
        ]
        findings = run_check(current, False)
    return current, fixed, skipped


def _unified_diff(path: str, before: bytes, after: bytes) -> str:
    old = before.decode("utf-8", errors="replace").splitlines(keepends=True)
    new = after.decode("utf-8", errors="replace").splitlines(keepends=True)
    return "".join(difflib.unified_diff(old, new, fromfile=f"a/{path}", tofile=f"b/{path}"))


def _write_all(changed: dict[str, tuple[bytes, bytes]]) -> int:
    written = 0
    for path, (before, after) in sorted(changed.items()):
        try:
            write_atomically(Path(path), before, after)
            written += 1
        except StaleFileError as error:
            click.echo(f"dbpoollint: warning: {error}", err=True)
        except OSError as error:
            click.echo(f"dbpoollint: warning: {path}: cannot write: {error.strerror}", err=True)
    return written


def _project_files(targets: list[Path], settings: Settings) -> dict[str, str]:
    excludes = Excludes([*settings.exclude, *settings.extend_exclude], settings.root)
    files = {}
    found = list(discover_project_files(targets, excludes, settings.respect_gitignore))
    found += pins_above(targets, set(found))
    for path in found:
        try:
            files[str(path)] = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue  # unreadable config is not ours to report; the Python files still are
    return files


def _reread(item: FileInput) -> FileInput:
    if item.data is None or item.path == "-":
        return item
    return read_input(Path(item.path), item.module, item.is_test, item.path)


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


@main.command()
@click.option(
    "--path",
    "pyproject",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("pyproject.toml"),
    show_default=True,
    help="The pyproject.toml to write to.",
)
@_user_errors
def init(pyproject: Path) -> None:
    """Write a commented [tool.dbpoollint] table into pyproject.toml, keeping the rest."""
    click.echo(write_init(pyproject))
