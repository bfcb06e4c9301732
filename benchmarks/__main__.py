"""Command line: ``python -m benchmarks [--synthetic N] [--density F] [--no-stdlib] ...``."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks.synthetic import SyntheticCorpus, cross_module_recall, generate

CODE = "DPL101"
SKIP_DIRS = frozenset({"site-packages", "__pycache__"})
GNU_TIME = "/usr/bin/time"
# Keys under which a JSON report may keep its list of findings, if it is not a bare list.
FINDINGS_KEYS = ("findings", "diagnostics", "results", "violations")
PATH_KEYS = ("filename", "path", "file")

# Fallback when GNU time is missing: a fresh wrapper process whose RUSAGE_CHILDREN covers exactly
# one measurement (in this process it would be the maximum over every run so far).
_RUSAGE_WRAPPER = """\
import resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open(sys.argv[1], "w") as stats:
    stats.write(str(peak // 1024 if sys.platform == "darwin" else peak))
sys.exit(code)
"""


@dataclasses.dataclass(frozen=True)
class Result:
    corpus: str
    run: str
    files: int
    lines: int
    wall_seconds: float
    peak_rss_mib: float | None
    returncode: int
    findings: int | None
    dpl101: int | None
    expected_dpl101: int | None

    @property
    def files_per_second(self) -> float:
        return self.files / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def lines_per_second(self) -> float:
        return self.lines / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def ok(self) -> bool:
        matches = self.expected_dpl101 is None or self.expected_dpl101 == self.dpl101
        return self.returncode == 0 and self.findings is not None and matches

    def as_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["files_per_second"] = round(self.files_per_second, 1)
        data["lines_per_second"] = round(self.lines_per_second, 1)
        data["wall_seconds"] = round(self.wall_seconds, 3)
        return data


def python_files(root: Path) -> Iterator[Path]:
    """Every ``*.py`` under root, skipping site-packages and __pycache__, in a stable order."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(name for name in dirnames if name not in SKIP_DIRS)
        for name in sorted(filenames):
            if name.endswith(".py"):
                yield Path(dirpath, name)


def count_tree(root: Path) -> tuple[int, int]:
    files = lines = 0
    for path in python_files(root):
        files += 1
        lines += len(path.read_bytes().splitlines())
    return files, lines


def rss_wrapper(stats_file: Path) -> list[str]:
    """The argv prefix that records the child's peak RSS in KiB into stats_file."""
    if use_gnu_time():
        return [GNU_TIME, "-f", "%M", "-o", str(stats_file)]
    return [sys.executable, "-c", _RUSAGE_WRAPPER, str(stats_file)]


@functools.cache
def use_gnu_time() -> bool:
    if sys.platform != "linux" or not os.access(GNU_TIME, os.X_OK):
        return False
    # BusyBox's time has no -o; probe once rather than trust the path.
    probe = subprocess.run(
        [GNU_TIME, "-f", "%M", "-o", os.devnull, "true"], capture_output=True, check=False
    )
    return probe.returncode == 0


def measure(command: list[str]) -> tuple[float, float | None, subprocess.CompletedProcess[str]]:
    """Run command once; return wall seconds, peak RSS in MiB (None if unknown), the process."""
    with tempfile.TemporaryDirectory(prefix="dbpoollint-rss-") as stats_dir:
        stats_file = Path(stats_dir, "maxrss")
        argv = [*rss_wrapper(stats_file), *command]
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        # GNU time prepends "Command exited with non-zero status N"; the number is the last line.
        stats = stats_file.read_text().split() if stats_file.exists() else []
    peak_mib = int(stats[-1]) / 1024 if stats and stats[-1].isdigit() else None
    return wall, peak_mib, proc


def parse_findings(stdout: str) -> list[dict[str, Any]] | None:
    """The findings of a JSON report: a bare list, or a list under one of FINDINGS_KEYS."""
    try:
        data = json.loads(stdout)
    except json.JSONDecodeError:
        return None
    if isinstance(data, dict):
        data = next((data[key] for key in FINDINGS_KEYS if isinstance(data.get(key), list)), None)
    if not isinstance(data, list):
        return None
    return [item for item in data if isinstance(item, dict)]


def finding_path(finding: dict[str, Any]) -> Path | None:
    for key in PATH_KEYS:
        value = finding.get(key)
        if isinstance(value, str):
            return Path(value).resolve()
    return None


def explain_mismatch(corpus: SyntheticCorpus, findings: list[dict[str, Any]]) -> None:
    """Name a few files that were missed or flagged wrongly, when findings carry paths."""
    found = [finding_path(item) for item in findings if item.get("code") == CODE]
    if not found or None in found:
        return
    found_paths = {path for path in found if path is not None}
    expected = {item.path.resolve(): item.kind for item in corpus.expected if item.code == CODE}
    missed = sorted(path for path in expected if path not in found_paths)
    extra = sorted(found_paths - expected.keys())
    for label, paths in (("missed", missed), ("unexpected", extra)):
        if paths:
            shown = ", ".join(f"{path} ({expected.get(path, 'not bad')})" for path in paths[:5])
            log(f"  {label} {len(paths)} file(s), e.g. {shown}")


def run_corpus(
    name: str,
    root: Path,
    command: Callable[[Path], list[str]],
    synthetic: SyntheticCorpus | None = None,
) -> list[Result]:
    files, lines = count_tree(root)
    results: list[Result] = []
    for run in ("cold", "warm"):
        log(f"{name} {run}: {files} files, {lines} lines ...")
        wall, peak_mib, proc = measure(command(root))
        findings = parse_findings(proc.stdout)
        if proc.returncode != 0 or findings is None:
            log(f"  command failed (exit {proc.returncode}, JSON report: {findings is not None})")
            log("  stderr: " + (proc.stderr.strip()[-2000:] or "<empty>"))
        dpl101 = None if findings is None else sum(item.get("code") == CODE for item in findings)
        expected = None if synthetic is None else synthetic.expected_findings
        if synthetic is not None:
            log(f"  {name} {run}: expected {expected}, found {dpl101}")
            if findings is not None:
                log(f"  {name} {run}: {cross_module_recall(synthetic, findings)}")
            if findings is not None and dpl101 != expected:
                explain_mismatch(synthetic, findings)
        results.append(
            Result(
                name,
                run,
                files,
                lines,
                wall,
                peak_mib,
                proc.returncode,
                None if findings is None else len(findings),
                dpl101,
                expected,
            )
        )
    return results


def format_table(results: Sequence[Result]) -> str:
    header = (
        "corpus",
        "run",
        "files",
        "lines",
        "wall s",
        "files/s",
        "lines/s",
        "RSS MiB",
        "findings",
        CODE,
    )
    rows = [header]
    for r in results:
        rss = "?" if r.peak_rss_mib is None else f"{r.peak_rss_mib:.1f}"
        found = "-" if r.dpl101 is None else str(r.dpl101)
        if r.expected_dpl101 is not None:
            found += f"/{r.expected_dpl101}"
        rows.append(
            (
                r.corpus,
                r.run,
                str(r.files),
                str(r.lines),
                f"{r.wall_seconds:.2f}",
                f"{r.files_per_second:.0f}",
                f"{r.lines_per_second:.0f}",
                rss,
                "-" if r.findings is None else str(r.findings),
                found,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark `dbpoollint check` on the standard library and a synthetic corpus.",
    )
    parser.add_argument(
        "--synthetic", type=int, default=2000, metavar="N", help="synthetic files (0: skip)"
    )
    parser.add_argument(
        "--density", type=float, default=0.1, metavar="F", help="fraction of bad files"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic corpus")
    parser.add_argument(
        "--stdlib",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="benchmark the running interpreter's standard library",
    )
    parser.add_argument("--jobs", type=int, metavar="J", help="passed on as --jobs J")
    parser.add_argument(
        "--extra-args",
        default="",
        metavar="ARGS",
        help='more CLI flags, shell-quoted; write --extra-args="--no-cache" for a single flag',
    )
    parser.add_argument(
        "--command",
        metavar="CMD",
        help="the linter command, shell-quoted (default: the running python -m dbpoollint)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the synthetic corpus")
    parser.add_argument(
        "--json", action="store_true", help="print results as JSON on stdout (table on stderr)"
    )
    parser.add_argument(
        "--targets",
        action="store_true",
        help="check the performance targets P1-P4 and the start-up, each PASS or FAIL",
    )
    parser.add_argument("--rounds", type=int, default=3, help="paired rounds per target")
    parser.add_argument(
        "--big-lines", type=int, default=200_000, help="lines of the one-big-file target"
    )
    parser.add_argument(
        "--big-timeout", type=float, default=180, help="seconds before the big file is a FAIL"
    )
    parser.add_argument(
        "--real",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure a real application downloaded from its sdist (for --targets)",
    )
    args = parser.parse_args(argv)
    if args.synthetic < 0 or not 0.0 <= args.density <= 1.0:
        parser.error("--synthetic must be >= 0 and --density within [0, 1]")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # -P: the benchmarked folder (a stdlib copy) must not shadow the interpreter's own modules.
    base = shlex.split(args.command) if args.command else [sys.executable, "-P", "-m", "dbpoollint"]
    jobs = [] if args.jobs is None else ["--jobs", str(args.jobs)]
    extra = shlex.split(args.extra_args)

    def command(target: Path) -> list[str]:
        flags = ["--output-format", "json", "--exit-zero", "--quiet"]
        return [*base, "check", str(target), *flags, *jobs, *extra]

    if args.targets:
        from benchmarks.targets import run_targets

        workdir = Path(tempfile.mkdtemp(prefix="dbpoollint-targets-"))
        try:
            return run_targets(
                base,
                args.jobs or 2,
                args.rounds,
                args.synthetic or 1000,
                args.big_lines,
                args.big_timeout,
                args.real,
                workdir,
            )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    results: list[Result] = []
    if args.stdlib:
        from benchmarks.targets import byte_compile_package, stdlib_copy

        byte_compile_package()
        copies = Path(tempfile.mkdtemp(prefix="dbpoollint-stdlib-"))
        try:
            results += run_corpus("stdlib", stdlib_copy(copies), command)
        finally:
            shutil.rmtree(copies, ignore_errors=True)
    if args.synthetic:
        workdir = Path(tempfile.mkdtemp(prefix="dbpoollint-bench-"))
        try:
            log(f"generating {args.synthetic} synthetic files in {workdir} ...")
            corpus = generate(workdir / "corpus", args.synthetic, args.density, args.seed)
            results += run_corpus("synthetic", corpus.root, command, corpus)
        finally:
            if args.keep:
                log(f"kept {workdir} (expected findings in corpus.expected.json)")
            else:
                shutil.rmtree(workdir, ignore_errors=True)

    table = format_table(results)
    if args.json:
        log(table)
        report = {
            "python": sys.version.split()[0],
            "command": shlex.join(command(Path("<dir>"))),
            "rss": "GNU time %M" if use_gnu_time() else "getrusage in a wrapper process",
            "results": [result.as_json() for result in results],
        }
        print(json.dumps(report, indent=2))
    else:
        print(table)
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
