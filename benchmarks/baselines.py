"""Yardsticks for the targets, run as `python -m benchmarks.baselines MODE ROOT [JOBS]`.

- `naive`: what a libcst linter without a prefilter costs: parse every file and resolve
  ParentNode, Scope and QualifiedName metadata, in JOBS processes;
- `parse`: libcst parse-only of the files dbpoollint parses, in JOBS processes: those listed in
  the file named by a fourth argument (what `list` printed), else those its prefilter lets
  through (the second pass's files left out);
- `list`: run dbpoollint on ROOT in this process and print every file it parsed, the files of
  its second pass (modules naming a client builder, re-exporting `__init__`s) included.
"""

from __future__ import annotations

import contextlib
import io
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import libcst as cst
from libcst.metadata import (
    MetadataWrapper,
    ParentNodeProvider,
    QualifiedNameProvider,
    ScopeProvider,
)

from benchmarks.__main__ import python_files


def _naive(path: Path) -> int:
    try:
        wrapper = MetadataWrapper(cst.parse_module(path.read_bytes()))
        wrapper.resolve_many([ParentNodeProvider, ScopeProvider, QualifiedNameProvider])
    except (cst.ParserSyntaxError, RecursionError, ValueError):
        return 0
    return 1


def _parse(path: Path) -> int:
    try:
        cst.parse_module(path.read_bytes())
    except (cst.ParserSyntaxError, RecursionError, ValueError):
        return 0
    return 1


def prefiltered(root: Path) -> list[Path]:
    """The files dbpoollint parses: tests aside, those its packs' triggers match."""
    from dbpoollint.discovery import is_test_file
    from dbpoollint.packs import load_packs

    packs = load_packs()
    return [
        p
        for p in python_files(root)
        if not is_test_file(p, root) and packs.worth_parsing(p.read_bytes())
    ]


def parsed_by_dbpoollint(root: Path) -> list[Path]:
    """Every file a cold `dbpoollint check ROOT` parses, seen by wrapping its `analyse_file`."""
    import os

    from dbpoollint import cli, engine

    seen: list[Path] = []
    analyse = engine.analyse_file

    def noting(path: str, *args: Any, **kwargs: Any) -> engine.FileResult:
        seen.append((root / path).resolve())
        return analyse(path, *args, **kwargs)

    engine.analyse_file = noting  # type: ignore[assignment]
    here = Path.cwd()
    os.chdir(root)
    arguments = ["check", ".", "--no-cache", "-j", "1", "--exit-zero", "-q"]
    try:
        cli.main(arguments, standalone_mode=False)
    except SystemExit:
        pass  # the check's own exit, after every file was analysed
    finally:
        os.chdir(here)
        engine.analyse_file = analyse  # type: ignore[assignment]
    return sorted(set(seen))


def main(argv: list[str]) -> int:
    mode, root = argv[0], Path(argv[1])
    jobs = int(argv[2]) if len(argv) > 2 else 2
    if mode == "list":
        with contextlib.redirect_stdout(io.StringIO()):
            parsed = parsed_by_dbpoollint(root)
        print("\n".join(str(path) for path in parsed))
        return 0
    if mode == "naive":
        files = list(python_files(root))
    elif len(argv) > 3:
        files = [Path(line) for line in Path(argv[3]).read_text().splitlines() if line]
    else:
        files = prefiltered(root)
    work = _naive if mode == "naive" else _parse
    with ProcessPoolExecutor(max_workers=jobs) as executor:
        done = sum(executor.map(work, files, chunksize=8))
    print(f"{mode}: {done}/{len(files)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
