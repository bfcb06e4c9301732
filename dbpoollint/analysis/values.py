"""Static values of call arguments: literals, environment reads, dicts, names.

Rules about limits, timeouts and URLs need to know what a keyword argument *is* without running
the code: `pool_size=5`, `os.environ["DATABASE_URL"]`, `os.getenv("DB_URL", "postgres://...")`,
`**ENGINE_OPTIONS` defined in the same module, or an f-string with literal parts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import libcst as cst

ENV_GETTERS = ("os.getenv", "os.environ.get", "os.getenvb")
ENV_MAPPINGS = ("os.environ",)


@dataclass(frozen=True)
class Value:
    """What an expression is, as far as static reading can tell.

    kind: "literal" (str/int/float/bool/None in `literal`), "env" (`name` is the variable,
    `literal` its default if any), "name" (`name` is a qualified name), "dict" (`items`),
    "fstring" (`literal` is the text with `{...}` for the unknown parts), "other".
    """

    kind: str
    code: str
    literal: str | int | float | bool | None = None
    name: str = ""
    items: tuple[tuple[str, Value], ...] = ()

    def item(self, key: str) -> Value | None:
        return next((v for k, v in self.items if k == key), None)

    @property
    def text(self) -> str | None:
        """The string this value holds, if a literal or an environment default says so."""
        if self.kind in ("literal", "env", "fstring") and isinstance(self.literal, str):
            return self.literal
        return None


QualifiedNames = Callable[[cst.CSTNode], frozenset[str]]


def read_value(node: cst.BaseExpression, qualnames: QualifiedNames) -> Value:
    code = cst.Module([]).code_for_node(node)
    if isinstance(node, cst.SimpleString | cst.ConcatenatedString):
        value = node.evaluated_value
        return Value("literal", code, value if isinstance(value, str) else None)
    if isinstance(node, cst.Integer | cst.Float):
        return Value("literal", code, node.evaluated_value)
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        inner = read_value(node.expression, qualnames)
        if inner.kind == "literal" and isinstance(inner.literal, int | float):
            return Value("literal", code, -inner.literal)
    if isinstance(node, cst.Name) and node.value in ("True", "False", "None"):
        return Value("literal", code, {"True": True, "False": False, "None": None}[node.value])
    if isinstance(node, cst.FormattedString):
        return Value("fstring", code, _fstring_text(node))
    if isinstance(node, cst.Subscript) and qualnames(node.value) & frozenset(ENV_MAPPINGS):
        key = _subscript_key(node)
        if key is not None:
            return Value("env", code, None, key)
    if isinstance(node, cst.Call):
        names = qualnames(node.func)
        if names & frozenset(ENV_GETTERS) and node.args:
            first = read_value(node.args[0].value, qualnames)
            default = read_value(node.args[1].value, qualnames) if len(node.args) > 1 else None
            if isinstance(first.literal, str):
                fallback = default.literal if default is not None else None
                return Value("env", code, fallback, first.literal)
        if names & frozenset({"builtins.dict", "dict"}) or (
            isinstance(node.func, cst.Name) and node.func.value == "dict"
        ):
            items = tuple(
                (arg.keyword.value, read_value(arg.value, qualnames))
                for arg in node.args
                if arg.keyword is not None
            )
            return Value("dict", code, items=items)
        if (
            isinstance(node.func, cst.Attribute)
            and node.func.attr.value == "format"
            and isinstance(node.func.value, cst.SimpleString)
        ):
            template = node.func.value.evaluated_value
            if isinstance(template, str):
                return Value("fstring", code, template)
    if isinstance(node, cst.Dict):
        return Value("dict", code, items=_dict_items(node, qualnames))
    if isinstance(node, cst.Name | cst.Attribute):
        resolved = sorted(qualnames(node))
        return Value("name", code, name=resolved[0] if resolved else code)
    return Value("other", code)


def _dict_items(node: cst.Dict, qualnames: QualifiedNames) -> tuple[tuple[str, Value], ...]:
    pairs = []
    for element in node.elements:
        if isinstance(element, cst.DictElement) and isinstance(element.key, cst.SimpleString):
            key = element.key.evaluated_value
            if isinstance(key, str):
                pairs.append((key, read_value(element.value, qualnames)))
    return tuple(pairs)


def _subscript_key(node: cst.Subscript) -> str | None:
    if len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Index):
        return None
    key = node.slice[0].slice.value
    if isinstance(key, cst.SimpleString):
        value = key.evaluated_value
        return value if isinstance(value, str) else None
    return None


def _fstring_text(node: cst.FormattedString) -> str:
    parts = []
    for part in node.parts:
        if isinstance(part, cst.FormattedStringText):
            parts.append(part.value)
        elif isinstance(part, cst.FormattedStringExpression):
            parts.append("{" + cst.Module([]).code_for_node(part.expression) + "}")
    return "".join(parts)
