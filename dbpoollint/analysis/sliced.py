"""Summarise a very large module slice by slice (`slicing`), for the same summary in bounded
memory: only one slice's tree is alive at a time."""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterator, Sized
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import libcst as cst

from dbpoollint.analysis.indexer import ModuleIndexer
from dbpoollint.analysis.merge import Owned, merge_slice
from dbpoollint.analysis.model import ModuleSummary
from dbpoollint.analysis.slicing import Slice, plan
from dbpoollint.analysis.summarise import Wanted, collect, finish_module
from dbpoollint.checks.base import Finding, file_finding
from dbpoollint.packs import PackSet


def summarise_sliced(
    path: str,
    data: bytes,
    text: str,
    module: str,
    is_test: bool,
    packs: PackSet,
    workers: int = 1,
) -> tuple[ModuleSummary | None, Finding | None] | None:
    """As `summarise.summarise`, or None when the module is not worth slicing or cannot be
    sliced (invalid Python, a slice libcst refuses): the whole-module path decides then.

    With `workers` > 1 the slices are analysed in that many processes, merged in order."""
    planned = plan(text)
    if planned is None:
        return None
    slices, keys = planned
    task = _SliceTask(path, module, is_test, Wanted.of(data), keys)
    summary = ModuleSummary(path=path, module=module, is_test=is_test)
    imported_modules: set[str] = set()
    registrations: list[Registration] = []
    for piece, analysed in zip(slices, _analyse_all(task, slices, packs, workers), strict=True):
        if analysed is None:
            return None
        if isinstance(analysed, Finding):
            return None, analysed
        part, owned, imported, registered = analysed
        merge_slice(summary, part, piece, owned)
        imported_modules |= imported
        registrations += registered
    finish_module(summary, packs, data, imported_modules, registrations)
    return summary, None


Registration = tuple[frozenset[str], str, bool]
# A slice's summary, the own entries of its position-less lists, its imported modules and own
# registrations; a Finding when it is too deep to walk; None when libcst refuses it.
Analysed = tuple[ModuleSummary, Owned, set[str], list[Registration]] | Finding | None


@dataclass(frozen=True)
class _SliceTask:
    path: str
    module: str
    is_test: bool
    wanted: Wanted
    keys: frozenset[str]


_PACKS: list[PackSet] = []  # the worker's packs, from `_init_worker`


def _init_worker(packs: PackSet) -> None:
    _PACKS[:] = [packs]


def _analyse_in_worker(task: _SliceTask, piece: Slice) -> Analysed:
    return _analyse(task, piece, _PACKS[0])


def _analyse_all(
    task: _SliceTask, slices: list[Slice], packs: PackSet, workers: int
) -> Iterator[Analysed]:
    workers = min(workers, len(slices))
    if workers <= 1:
        yield from (_analyse(task, piece, packs) for piece in slices)
        return
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(packs,)) as executor:
        yield from executor.map(functools.partial(_analyse_in_worker, task), slices)


def _analyse(task: _SliceTask, piece: Slice, packs: PackSet) -> Analysed:
    try:
        module_node = cst.parse_module(piece.text)
    except (cst.ParserSyntaxError, RecursionError):
        return None
    part = ModuleSummary(path=task.path, module=task.module, is_test=task.is_test)
    ledgers: list[_Ledger] = []

    def watch(indexer: ModuleIndexer) -> list[cst.CSTVisitor]:
        lists: dict[str, Callable[[], Sized]] = {
            "hooks": lambda: part.lifecycle.hooks,
            "env_files": lambda: part.urls.env_files,
            "star_imports": lambda: part.star_imports,
            "registrations": lambda: indexer.registrations,
        }
        ledgers.append(_Ledger(module_node, piece.before, piece.after, lists))
        return [ledgers[-1]]

    # A slice's tree is acyclic and freed by reference counting as soon as it is done:
    # collector passes over its million objects would only cost time.
    gc.disable()
    try:
        indexer = collect(
            part,
            module_node,
            packs,
            task.wanted,
            task.keys,
            piece.original_line,
            watch,
            piece.statement_lines,
        )
    finally:
        gc.enable()
    if indexer is None:
        return file_finding(task.path, "DPL002", "cannot analyse: too deeply nested")
    owned = ledgers[0].owned()
    registered = [indexer.registrations[i] for i in owned["registrations"]]
    return part, owned, indexer.imported_modules, registered


class _Ledger(cst.CSTVisitor):
    """Which entries of position-less fact lists the slice's own statements added.

    It walks before every collector: the entries added between the start of one top-level
    statement and the start of the next come from the first."""

    def __init__(
        self,
        module: cst.Module,
        before: int,
        after: int,
        lists: dict[str, Callable[[], Sized]],
    ) -> None:
        super().__init__()
        body = module.body
        self._own = {id(s) for s in body[before : len(body) - after]}
        self._tops = {id(s) for s in body}
        self._lists = lists
        self._current_own = False
        self._marks: dict[str, int] = dict.fromkeys(lists, 0)
        self._owned: Owned = {name: [] for name in lists}

    def _statement(self, node: cst.CSTNode) -> None:
        if id(node) in self._tops:
            self._close()
            self._current_own = id(node) in self._own

    def _close(self) -> None:
        for name, entries in self._lists.items():
            length = len(entries())
            if self._current_own:
                self._owned[name].extend(range(self._marks[name], length))
            self._marks[name] = length

    def owned(self) -> Owned:
        self._close()
        self._current_own = False
        return self._owned

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        self._statement(node)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._statement(node)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._statement(node)

    def visit_If(self, node: cst.If) -> None:
        self._statement(node)

    def visit_Try(self, node: cst.Try) -> None:
        self._statement(node)

    def visit_TryStar(self, node: cst.TryStar) -> None:
        self._statement(node)

    def visit_For(self, node: cst.For) -> None:
        self._statement(node)

    def visit_While(self, node: cst.While) -> None:
        self._statement(node)

    def visit_With(self, node: cst.With) -> None:
        self._statement(node)

    def visit_Match(self, node: cst.Match) -> None:
        self._statement(node)
