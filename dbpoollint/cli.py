"""click commands only: parse options, call the engine, print, set the exit code."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from dbpoollint import __version__, disk_reads
from dbpoollint.analysis.contexts import path_context, path_context_at
from dbpoollint.cache import ResultCache, cache_folder, clean
from dbpoollint.config import ConfigError, Settings, find_config, load_settings
from dbpoollint.discovery import (
    DiscoveryError,
    Excludes,
    Found,
    discover,
    discover_project_files,
    forget_file_system,
    is_test_at,
    is_test_file,
    module_name,
    module_names_at,
    pins_above,
    project_modules,
    project_root,
    resolved,
)
from dbpoollint.output import FORMAT_NAMES, formatter
from dbpoollint.run_memo import PlannedFile, Report, RunMemo
from dbpoollint.source import SourceError, decode
from dbpoollint.writer import StaleFileError, encode_like, write_atomically

if TYPE_CHECKING:
    from dbpoollint.checks.base import Finding
    from dbpoollint.engine import FileInput
    from dbpoollint.packs import PackSet
    from dbpoollint.selection import Selection

# The engine, the rules and the packs are imported where a run needs them: a check whose
# report is replayed (`run_memo`) never loads them.

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
GC_THRESHOLDS = (200_000, 30, 30)
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
        except BrokenPipeError:
            # `dbpoollint check | head -1`: the reader has gone; click exits quietly.
            raise
        except (ConfigError, DiscoveryError) as error:
            _fail(str(error))
        except RecursionError:
            _fail("internal error: recursion limit reached; please report this file")
        except Exception as error:
            if _is_user_error(error):
                _fail(str(error))
            if os.environ.get("DBPOOLLINT_DEBUG"):
                raise
            _fail(f"internal error: {type(error).__name__}: {error} (set DBPOOLLINT_DEBUG=1)")

    return wrapper  # type: ignore[return-value]


def _is_user_error(error: Exception) -> bool:
    from dbpoollint.packs import PackError
    from dbpoollint.selection import SelectionError

    return isinstance(error, PackError | SelectionError)


def _codes(values: Sequence[str]) -> list[str]:
    """`--select DPL101,DPL102 --select DPL2` -> ["DPL101", "DPL102", "DPL2"]."""
    return [c.strip().upper() for v in values for c in v.split(",") if c.strip()]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="dbpoollint")
def main() -> None:
    """Find database connection-pool mistakes in Python services."""
    forget_file_system()
    # A run allocates millions of objects it keeps (summaries read from the cache, facts,
    # findings) and few cycles: the default thresholds spend about a third of a warm
    # single-file run rescanning them. mypy does the same.
    gc.set_threshold(*GC_THRESHOLDS)


def _check_options(function: F) -> F:
    options = [
        click.argument("paths", nargs=-1, type=click.Path(path_type=Path)),
        click.option("--select", multiple=True, help="Rule codes or prefixes to enable."),
        click.option("--extend-select", multiple=True, help="Codes to enable on top."),
        click.option("--ignore", multiple=True, help="Rule codes or prefixes to disable."),
        click.option(
            "--output-format",
            type=click.Choice(FORMAT_NAMES),
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
        click.option(
            "--ignore-noqa", is_flag=True, help="Report (and fix) findings `# noqa` silences."
        ),
        click.option("--no-cache", is_flag=True, help="Neither read nor write the cache."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@main.command()
@_check_options
@click.option("--fix", is_flag=True, help="Apply safe fixes (and unsafe ones with --unsafe-fixes).")
@click.option(
    "--add-noqa", is_flag=True, help="Add `# noqa: CODE` to every line with a finding; no fixes."
)
@_user_errors
def check(fix: bool, add_noqa: bool, **options: Any) -> None:
    """Check PATHS (default: the current directory) for connection-pool mistakes."""
    _run(fix=fix, add_noqa=add_noqa, **options)


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
    ignore_noqa: bool,
    no_cache: bool,
    fix: bool,
    add_noqa: bool = False,
    summary: bool = False,
) -> None:
    targets = list(paths) or [Path(".")]
    reading_stdin = targets == [Path("-")]
    if add_noqa and (fix or diff or reading_stdin):
        raise click.UsageError("--add-noqa cannot be combined with --fix, --diff or stdin")
    if config_path is not None and not config_path.is_file():
        raise ConfigError(f"{config_path}: configuration file not found")
    anchor = Path(stdin_filename) if reading_stdin and stdin_filename else targets[0]
    if reading_stdin and not stdin_filename:
        anchor = Path(".")
    if config_path is not None:
        settings = load_settings(config_path, explicit=True)
    else:
        settings = load_settings(find_config(anchor))
    allow_unsafe = unsafe_fixes or settings.unsafe_fixes
    cache = None
    if not no_cache:
        folder = cache_folder(settings.root, settings.cache_dir)
        cache = ResultCache(folder, settings.packs)

    planned: list[PlannedFile] = []
    planned_context: list[PlannedFile] = []
    if not reading_stdin:
        planned = _planned_files(targets, settings, force_exclude)
        planned_context = _planned_context(targets, settings, {p.display for p in planned})
    if not reading_stdin and not planned:
        _selection(select, extend_select, ignore, ignore_noqa, settings)  # an unknown code fails
        click.echo("warning: No Python files found under the given path(s)", err=True)
        if show_statistics and output_format == "json":
            from dbpoollint.output.text import statistics

            click.echo(statistics([], as_json=True), nl=False)
        elif output_format not in ("text", "full"):
            # A machine reading `[]` (JSON), an empty SARIF run or JUnit suite needs no
            # special case for an empty tree.
            click.echo(formatter(output_format)([]), nl=False)
        sys.exit(EXIT_CLEAN)

    project_files = {} if reading_stdin else _project_files(targets, settings)

    # A plain check of an unchanged tree prints what it printed last time.
    memo = memo_key = None
    if cache is not None and not (reading_stdin or fix or diff or add_noqa):
        memo = RunMemo(cache)
        options = [settings, select, extend_select, ignore, ignore_noqa, output_format]
        options += [show_statistics, quiet]
        memo_key = memo.key(options, [planned, planned_context], project_files)
        stored = memo.get(memo_key) if memo_key is not None else None
        if stored is not None:
            memo.save()
            _replay(stored, exit_zero)

    from dbpoollint.engine import check_files
    from dbpoollint.fixing import attach_fixes
    from dbpoollint.packs import load_packs

    # An unknown code fails here, never replayed: a run that failed stored no report.
    selection = _selection(select, extend_select, ignore, ignore_noqa, settings)
    packs = load_packs(settings.packs)
    preread = memo.read if memo is not None else {}
    if reading_stdin:
        inputs = _stdin_input(stdin_filename)
    else:
        inputs = [_read(p, preread.get(p.display)) for p in planned]
    context = [_read(p, preread.get(p.display)) for p in planned_context]

    # The one-shot refactor over a large tree shows progress on a terminal: one bar for the
    # whole run, which grows by a tree's worth of files for each fix round that re-checks.
    show_progress = summary and _on_terminal() and len(inputs) >= PROGRESS_THRESHOLD
    with _progress(show_progress) as progress:

        def run_check(files: list[FileInput], with_edits: bool) -> list[Finding]:
            result = check_files(
                files,
                packs,
                selection,
                settings.packs,
                jobs=jobs,
                force_parse=reading_stdin,
                project_files=project_files,
                progress=progress.start(len(files)),
                fix_values=settings.fix_values,
                context=context,
                budget=settings.budget,
                contexts=frozenset(settings.contexts),
                cache=cache,
            )
            sources = {f.path: f.data for f in files if f.data is not None}
            return attach_fixes(
                result.findings, sources, packs, with_edits, cache, jobs, settings.packs
            )

        if memo is not None:
            with disk_reads.recording() as reads:
                findings = run_check(inputs, output_format in ("json", "sarif"))
                text = _rendered(findings, output_format, show_statistics, quiet)
            report = Report(text, bool(findings))
            read = {f.path: f.data for f in [*inputs, *context] if f.data is not None}
            if memo_key is not None and memo.describes(read):
                memo.put(memo_key, report, reads)
            memo.save()
            _replay(report, exit_zero)

        _report(
            run_check,
            inputs,
            packs,
            output_format,
            fix,
            diff,
            add_noqa,
            allow_unsafe,
            reading_stdin,
            summary,
            quiet,
            show_statistics,
            exit_zero,
            exit_non_zero_on_fix,
        )


def _selection(
    select: Sequence[str],
    extend_select: Sequence[str],
    ignore: Sequence[str],
    ignore_noqa: bool,
    settings: Settings,
) -> Selection:
    """The rules this run reports; loads every rule (to validate the codes)."""
    from dbpoollint.selection import Selection

    return Selection(
        select=_codes(select) if select else settings.select,
        extend_select=[*settings.extend_select, *_codes(extend_select)],
        ignore=[*settings.ignore, *_codes(ignore)],
        per_file_ignores=settings.per_file_ignores,
        root=settings.root,
        respect_noqa=not ignore_noqa,
    )


def _rendered(
    findings: Sequence[Finding], output_format: str, show_statistics: bool, quiet: bool
) -> str:
    """What a check prints on stdout for its findings."""
    from dbpoollint.output.text import statistics, summary_line

    if show_statistics:
        # As ruff: the counts table instead of the findings, JSON when JSON was asked for.
        return statistics(findings, as_json=output_format == "json")
    text = formatter(output_format)(findings)
    if output_format in ("text", "full") and not quiet:
        text += summary_line(findings) + "\n"
    return text


def _replay(report: Report, exit_zero: bool) -> NoReturn:
    click.echo(report.text, nl=False)
    sys.exit(EXIT_FINDINGS if report.found and not exit_zero else EXIT_CLEAN)


def _report(
    run_check: Callable[[list[FileInput], bool], list[Finding]],
    inputs: list[FileInput],
    packs: PackSet,
    output_format: str,
    fix: bool,
    diff: bool,
    add_noqa: bool,
    allow_unsafe: bool,
    reading_stdin: bool,
    summary: bool,
    quiet: bool,
    show_statistics: bool,
    exit_zero: bool,
    exit_non_zero_on_fix: bool,
) -> NoReturn:
    show_edits = output_format in ("json", "sarif")
    findings = run_check(inputs, show_edits and not (fix or diff))
    if add_noqa:
        added = _add_noqa(inputs, findings)
        click.echo(f"Added {added} noqa directive{'' if added == 1 else 's'}.", err=True)
        sys.exit(EXIT_CLEAN)
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
            _fix_stdin(inputs[0], final, run_check, output_format, exit_zero, exit_non_zero_on_fix)
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

    click.echo(_rendered(findings, output_format, show_statistics, quiet), nl=False)
    if findings and not exit_zero:
        sys.exit(EXIT_FINDINGS)
    sys.exit(EXIT_FINDINGS if changed_files and exit_non_zero_on_fix else EXIT_CLEAN)


MAX_FIX_ROUNDS = 5
PROGRESS_THRESHOLD = 200


def _on_terminal() -> bool:
    return sys.stderr.isatty()


class _Progress:
    """One bar for a whole run; each check of the tree adds its files to the bar's length."""

    def __init__(self, bar: Any | None) -> None:
        self.bar = bar
        self.checks = 0

    def start(self, files: int) -> Callable[[int], None] | None:
        if self.bar is None:
            return None
        self.checks += 1
        if self.checks == 1:
            self.bar.length = files
        else:
            self.bar.length += files
            self.bar.label = f"Fixing (round {self.checks - 1})"
        return self.bar.update  # type: ignore[no-any-return]


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[_Progress]:
    if not enabled:
        yield _Progress(None)
        return
    bar: Any = click.progressbar(length=0, label="Analysing", file=sys.stderr)
    with bar:
        yield _Progress(bar)


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
        from dbpoollint.fixing import apply_fixes

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
    import difflib  # only --diff needs it

    from dbpoollint.output.masking import mask_text

    diff = "".join(difflib.unified_diff(old, new, fromfile=f"a/{path}", tofile=f"b/{path}"))
    return mask_text(diff)  # a diff pasted into a review must not carry a URL's password


def _fix_stdin(
    item: FileInput,
    final: dict[str, bytes],
    run_check: Callable[[list[FileInput], bool], list[Finding]],
    output_format: str,
    exit_zero: bool,
    exit_non_zero_on_fix: bool,
) -> NoReturn:
    """As ruff: the fixed source on stdout, what is left on stderr, exit 1 while any is left."""
    fixed = final.get(item.path, item.data or b"")
    sys.stdout.buffer.write(fixed)
    sys.stdout.flush()
    left = run_check([dataclasses.replace(item, data=fixed)], output_format in ("json", "sarif"))
    click.echo(formatter(output_format)(left), nl=False, err=True)
    if left and not exit_zero:
        sys.exit(EXIT_FINDINGS)
    sys.exit(EXIT_FINDINGS if exit_non_zero_on_fix and fixed != item.data else EXIT_CLEAN)


# A noqa comment cannot silence these: the file could not be read or parsed, or the finding is
# about a noqa comment itself.
_NOT_NOQA = ("DPL001", "DPL002", "DPL009")


def _add_noqa(inputs: list[FileInput], findings: list[Finding]) -> int:
    """`# noqa: CODE` on each reported line of Python files; returns the directives written."""
    by_path: dict[str, dict[int, set[str]]] = {}
    for finding in findings:
        if finding.code in _NOT_NOQA or not finding.path.endswith((".py", ".pyi")):
            continue
        by_path.setdefault(finding.path, {}).setdefault(finding.span.line, set()).add(finding.code)
    added = 0
    for item in inputs:
        codes = by_path.get(item.path)
        if not codes or item.data is None:
            continue
        try:
            source = decode(item.path, item.data)
        except SourceError:
            continue
        from dbpoollint.noqa import add_noqa as add_directives

        text, changed = add_directives(source.text, codes)
        data = encode_like(item.data, text, source.encoding)
        if changed and _write_all({item.path: (item.data, data)}):
            added += changed
    return added


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
    from dbpoollint.engine import read_input

    fresh = read_input(Path(item.path), item.module, item.is_test, item.path, item.aliases)
    return dataclasses.replace(fresh, path_context=item.path_context)


def _stdin_input(stdin_filename: str | None) -> list[FileInput]:
    data = sys.stdin.buffer.read()
    display = stdin_filename or "-"
    path = Path(stdin_filename) if stdin_filename else Path("stdin.py")
    from dbpoollint.engine import FileInput

    return [
        FileInput(
            display, data, module_name(path), is_test_file(path), path_context=path_context(path)
        )
    ]


def _file_inputs(targets: list[Path], settings: Settings, force_exclude: bool) -> list[FileInput]:
    return [_read(planned) for planned in _planned_files(targets, settings, force_exclude)]


def _planned_files(
    targets: list[Path], settings: Settings, force_exclude: bool
) -> list[PlannedFile]:
    patterns = settings.exclude or []
    excludes = Excludes([*patterns, *settings.extend_exclude], settings.root)
    files = discover(targets, excludes, settings.respect_gitignore, force_exclude)
    real_bases: dict[Path, str] = {}
    planned = []
    for found, base in files:
        if found.unlistable:
            planned.append(_unlistable(Path(found.path)))
            continue
        if base not in real_bases:
            real_bases[base] = str(resolved(base))
        planned.append(_planned(found, real_bases[base]))
    return planned


def _planned(found: Found, real_base: str) -> PlannedFile:
    """Named from strings: a replayed run never builds a Path for the file."""
    name, aliases = module_names_at(found.real, found.name)
    test = is_test_at(found.path, found.real, real_base)
    context = path_context_at(found.path, found.real, real_base)
    return PlannedFile(found.path, found.path, name, test, aliases, context)


def _read(planned: PlannedFile, data: bytes | None = None) -> FileInput:
    """The file's input for the engine; `data` when its bytes were read already."""
    from dbpoollint.engine import FileInput, read_input

    if planned.unlistable:
        return FileInput(planned.display, None, planned.module, False, planned.unlistable)
    if data is not None:
        return FileInput(
            planned.display,
            data,
            planned.module,
            planned.is_test,
            aliases=planned.aliases,
            path_context=planned.path_context,
        )
    read = read_input(
        Path(planned.path), planned.module, planned.is_test, planned.display, planned.aliases
    )
    if planned.path_context is None:
        return read
    return dataclasses.replace(read, path_context=planned.path_context)


def _unlistable(folder: Path) -> PlannedFile:
    """A folder discovery could not list: DPL002 with the reason, like an unreadable file."""
    try:
        os.listdir(folder)
        reason = "cannot list folder"
    except OSError as error:
        reason = f"cannot list folder: {(error.strerror or str(error)).lower()}"
    return PlannedFile(str(folder), str(folder), folder.name, False, unlistable=reason)


def _planned_context(
    targets: list[Path], settings: Settings, checked: set[str]
) -> list[PlannedFile]:
    """The project's other modules, read for cross-module facts only (see SPEC: whole project)."""
    if all(target.is_dir() and resolved(target) == project_root(target) for target in targets):
        return []  # the whole project is checked: there is no other module to read
    excludes = Excludes([*settings.exclude, *settings.extend_exclude], settings.root)
    wanted = {str(resolved(Path(p))) for p in checked}
    here = os.getcwd() + os.sep
    # folder -> how relpath spells it: the files of a folder outside the working directory
    # (`../pkg/`) share one relpath call, the ones inside it need none.
    folders: dict[str, str] = {}
    real_roots: dict[Path, str] = {}
    context = []
    for found, root in project_modules(targets, excludes, settings.respect_gitignore):
        if root not in real_roots:
            real_roots[root] = str(resolved(root))
        if found.real in wanted or is_test_at(found.path, found.real, real_roots[root]):
            continue
        text = found.path
        folder, _, file_name = text.rpartition(os.sep)
        if text.startswith(here):
            display = text[len(here) :]
        elif not folder or not os.path.isabs(text):
            display = os.path.relpath(text)
        else:
            if folder not in folders:
                folders[folder] = os.path.relpath(folder)
            above = folders[folder]
            display = file_name if above == os.curdir else os.path.join(above, file_name)
        name, aliases = module_names_at(found.real, found.name)
        context.append(PlannedFile(text, display, name, False, aliases))
    return context


@main.command(name="clean")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The pyproject.toml or dbpoollint.toml whose cache to remove.",
)
@_user_errors
def clean_command(config_path: Path | None) -> None:
    """Remove the cache (.dbpoollint_cache/ at the project root, or `cache-dir`)."""
    if config_path is not None and not config_path.is_file():
        raise ConfigError(f"{config_path}: configuration file not found")
    if config_path is not None:
        settings = load_settings(config_path, explicit=True)
    else:
        settings = load_settings(find_config(Path(".")))
    folder = cache_folder(settings.root, settings.cache_dir)
    try:
        removed = clean(folder)
    except OSError as error:
        _fail(str(error))
    click.echo(f"Removed {folder}" if removed else f"No cache at {folder}", err=True)


@main.command()
@click.argument("code")
@_user_errors
def rule(code: str) -> None:
    """Print the documentation of rule CODE (e.g. DPL101, or its name)."""
    from dbpoollint.checks import ALL_RULES, RULES_BY_CODE
    from dbpoollint.output import rule_meta  # importlib.metadata: not on a check's path

    wanted = code.strip()
    found = RULES_BY_CODE.get(wanted.upper()) or next(
        (r for r in ALL_RULES if r.name == wanted.lower()), None
    )
    if found is None:
        _fail(f"unknown rule `{code}`; `dbpoollint rules` lists them")
    click.echo(f"# {found.name} ({found.code})\n")
    fix = f"Fix: {found.fix_title}" if found.fix_title else "Fix: none"
    click.echo(f"{fix}")
    click.echo(f"Severity: {rule_meta.severity(found.code)}")
    url = rule_meta.url(found.code)
    if url is not None:
        click.echo(f"Online: {url}")
    click.echo()
    click.echo(found.docs())


@main.command()
@click.option("--output-format", type=click.Choice(["text", "json"]), default="text")
@_user_errors
def rules(output_format: str) -> None:
    """List every rule."""
    from dbpoollint.checks import ALL_RULES

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
    from dbpoollint.init_config import write_init  # tomlkit: only `init` writes TOML

    click.echo(write_init(pyproject))


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--output-format", type=click.Choice(["text", "json"]), default="text")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A pyproject.toml or dbpoollint.toml to use instead of searching for one.",
)
@_user_errors
def budget(paths: tuple[Path, ...], output_format: str, config_path: Path | None) -> None:
    """Worst-case connections per database server: pools x workers x replicas vs the limit.

    Exits 1 when a server is over its limit.
    """
    from dbpoollint.deploy.budget import compute_budget
    from dbpoollint.deploy.report import render_json, render_text
    from dbpoollint.engine import analyse_project

    targets = list(paths) or [Path(".")]
    if config_path is not None and not config_path.is_file():
        raise ConfigError(f"{config_path}: configuration file not found")
    settings = load_settings(config_path or find_config(targets[0]))
    from dbpoollint.packs import load_packs

    packs = load_packs(settings.packs)
    inputs = _file_inputs(targets, settings, False)
    project = analyse_project(
        inputs, packs, settings.packs, None, _project_files(targets, settings), settings.budget
    )
    result = compute_budget(project)
    click.echo(render_json(result) if output_format == "json" else render_text(result), nl=False)
    sys.exit(EXIT_FINDINGS if any(server.over for server in result.servers) else EXIT_CLEAN)
