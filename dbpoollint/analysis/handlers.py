"""Match a module's functions against the framework packs' handler shapes."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator

from dbpoollint.analysis.model import (
    ClassFact,
    DecoratorFact,
    ExternalRoot,
    FunctionFact,
    HandlerRoot,
    ModuleSummary,
)
from dbpoollint.packs import HandlerShape, PackSet, qualname_matches


def find_roots(
    summary: ModuleSummary,
    packs: PackSet,
    imported_modules: set[str],
    registrations: list[tuple[frozenset[str], str, bool]],
) -> None:
    """Fill ``summary.roots`` and ``summary.external_roots``."""
    module_parts = set(summary.module.split(".")) | {summary.path.rsplit("/", 1)[-1][:-3]}
    seen: set[str] = set()

    def add(function: str, label: str) -> None:
        if function not in seen:
            seen.add(function)
            summary.roots.append(HandlerRoot(function, label))

    for fact in summary.functions.values():
        label = _match_function(fact, summary, packs, imported_modules, module_parts)
        if label is not None:
            add(fact.key, label)

    per_request_shapes = [s for s in packs.shapes("base-class") if s.instance_per_request]
    for class_key in summary.classes:
        if any(
            qualname_matches(s.classes, class_ancestry(summary, class_key))
            for s in per_request_shapes
        ):
            summary.per_request_classes.add(class_key)

    for qualnames, label, as_class in registrations:
        local = _local_target(summary, qualnames)
        if local is not None:
            if local in summary.classes:
                if as_class:
                    summary.per_request_classes.add(local)
                for method in methods_of(summary, local):
                    add(method, label)
            else:
                add(local, label)
            continue
        for qualname in sorted(qualnames):
            if "." in qualname:
                summary.external_roots.append(ExternalRoot(qualname, label, as_class))


def _local_target(summary: ModuleSummary, qualnames: frozenset[str]) -> str | None:
    prefix = summary.module + "."
    for qualname in qualnames:
        key = qualname[len(prefix) :] if qualname.startswith(prefix) else qualname
        if key in summary.functions or key in summary.classes:
            return key
    return None


def _match_function(
    fact: FunctionFact,
    summary: ModuleSummary,
    packs: PackSet,
    imported_modules: set[str],
    module_parts: set[str],
) -> str | None:
    if fact.barrier:
        return None
    for shape in packs.handler_shapes:
        if shape.shape == "decorator":
            if any(qualname_matches(shape.names, d.qualnames) for d in fact.decorators):
                if shape.exclude_classes and fact.class_key:
                    bases = class_ancestry(summary, fact.class_key)
                    if qualname_matches(shape.exclude_classes, bases):
                        continue
                return shape.label
        elif shape.shape == "instance-decorator":
            if any(_instance_decorator_matches(shape, d) for d in fact.decorators):
                return shape.label
        elif shape.shape == "base-class":
            if fact.class_key and shape.matches_method(fact.name):
                bases = class_ancestry(summary, fact.class_key)
                if qualname_matches(shape.classes, bases):
                    return shape.label
        elif shape.shape == "method-name":
            if (
                fact.class_key
                and shape.matches_method(fact.name)
                and fact.params[: len(shape.params)] == shape.params
                and _imports_any(shape, imported_modules)
            ):
                return shape.label
        elif shape.shape == "signature" and _signature_matches(
            shape, fact, imported_modules, module_parts
        ):
            return shape.label
    return None


def _instance_decorator_matches(shape: HandlerShape, decorator: DecoratorFact) -> bool:
    if not decorator.method or not any(
        fnmatch.fnmatchcase(decorator.method, pattern) for pattern in shape.methods
    ):
        return False
    if qualname_matches(shape.classes, decorator.receiver_classes):
        return True
    if decorator.receiver_classes and not decorator.receiver_is_import:
        known_elsewhere = any(
            "." in name and name.split(".", 1)[0] not in ("", "self")
            for name in decorator.receiver_classes
        )
        if known_elsewhere:
            return False  # an instance of some other library's class
    if shape.unresolved_receiver == "always":
        return True
    if shape.unresolved_receiver == "path-argument":
        return bool(decorator.first_argument and decorator.first_argument.startswith("/"))
    return False


def _signature_matches(
    shape: HandlerShape,
    fact: FunctionFact,
    imported_modules: set[str],
    module_parts: set[str],
) -> bool:
    if not fact.is_module_level or fact.params[: len(shape.params)] != shape.params:
        return False
    if shape.module_names and not module_parts & set(shape.module_names):
        return False
    return not shape.requires_import or _imports_any(shape, imported_modules)


def _imports_any(shape: HandlerShape, imported_modules: set[str]) -> bool:
    return any(
        module == wanted or module.startswith(wanted + ".")
        for module in imported_modules
        for wanted in shape.requires_import
    )


def class_ancestry(summary: ModuleSummary, class_key: str) -> set[str]:
    """Qualified names of every base, following classes defined in this module."""
    result: set[str] = set()
    pending = [class_key]
    visited: set[str] = set()
    while pending:
        key = pending.pop()
        if key in visited:
            continue
        visited.add(key)
        fact = summary.classes.get(key)
        if fact is None:
            continue
        for base in fact.base_qualnames:
            result.add(base)
            local = (
                base[len(summary.module) + 1 :] if base.startswith(summary.module + ".") else base
            )
            if local in summary.classes:
                pending.append(local)
    return result


def methods_of(summary: ModuleSummary, class_key: str) -> Iterator[str]:
    """Methods of a class and of its bases defined in the same module."""
    yield from summary.classes[class_key].methods
    for base in class_ancestry(summary, class_key):
        fact: ClassFact | None = summary.classes.get(base)
        if fact is not None:
            yield from fact.methods
