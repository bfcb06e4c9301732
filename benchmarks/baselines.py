"""Yardsticks for the targets, run as `python -m benchmarks.baselines MODE ROOT [JOBS]`.

- `naive`: what a libcst linter without a prefilter costs: parse every file and resolve
  ParentNode, Scope and QualifiedName metadata, in JOBS processes;
- `parse`: libcst parse-only of the files dbpoollint's prefilter lets through, in JOBS processes.
"""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

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


def main(argv: list[str]) -> int:
    mode, root = argv[0], Path(argv[1])
    jobs = int(argv[2]) if len(argv) > 2 else 2
    files = list(python_files(root)) if mode == "naive" else prefiltered(root)
    work = _naive if mode == "naive" else _parse
    with ProcessPoolExecutor(max_workers=jobs) as executor:
        done = sum(executor.map(work, files, chunksize=8))
    print(f"{mode}: {done}/{len(files)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
