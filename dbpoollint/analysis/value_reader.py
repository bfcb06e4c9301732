"""Read a call argument's `Value` from its syntax tree (see `values` for what each kind means)."""

from __future__ import annotations

import re
from collections.abc import Callable

import libcst as cst

from dbpoollint.analysis.code_text import code_of
from dbpoollint.analysis.values import (
    DYNACONF_SETTINGS,
    ENV_GETTERS,
    ENV_MAPPINGS,
    ENVIRON_ACCESSORS,
    ENVIRON_DEFAULT_VARS,
    ENVIRON_ENV,
    MAKE_URL,
    PYDANTIC_URL_TYPES,
    URL_CREATE,
    URL_PARTS,
    Value,
)

QualifiedNames = Callable[[cst.CSTNode], frozenset[str]]

# pydantic's `build()` keywords, in SQLAlchemy's `URL.create` terms.
_PYDANTIC_PARTS = {"scheme": "drivername", "path": "database", "user": "username"}
_ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
_KEY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def read_value(node: cst.BaseExpression, qualnames: QualifiedNames) -> Value:
    code = code_of(node)
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
        return Value("fstring", code, _fstring_text(node), items=_fstring_parts(node, qualnames))
    if isinstance(node, cst.BooleanOperation) and isinstance(node.operator, cst.Or):
        left, right = read_value(node.left, qualnames), read_value(node.right, qualnames)
        return Value("either", code, items=(("0", left), ("1", right)))
    if isinstance(node, cst.BinaryOperation):
        built = _binary(node, code, qualnames)
        if built is not None:
            return built
    if isinstance(node, cst.Subscript) and qualnames(node.value) & frozenset(ENV_MAPPINGS):
        key = _subscript_key(node)
        if key is not None:
            return Value("env", code, None, key)
    if (  # `str(settings.DATABASE_URL)`, `str(PostgresDsn.build(...))`
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Name)
        and node.func.value == "str"
        and len(node.args) == 1
        and node.args[0].keyword is None
    ):
        return read_value(node.args[0].value, qualnames)
    if isinstance(node, cst.Call):
        built = _builder(node, code, qualnames)
        if built is not None:
            return built
        names = qualnames(node.func)
        if names & ENVIRON_ENV:
            return Value("env-source", code, name="environ.Env")
        if names & DYNACONF_SETTINGS:
            return _dynaconf(node, code, qualnames)
        if names & frozenset(ENV_GETTERS) and node.args:
            first = read_value(node.args[0].value, qualnames)
            given = [a for a in node.args if a.keyword is None or a.keyword.value == "default"]
            default = read_value(given[1].value, qualnames) if len(given) > 1 else None
            if isinstance(first.literal, str):
                if default is not None and default.kind not in ("literal", "other"):
                    # `os.getenv("DATABASE_URL", settings.DEFAULT_URL)`: either, in that order
                    read = Value("env", code, None, first.literal)
                    return Value("either", code, items=(("0", read), ("1", default)))
                fallback = default.literal if default is not None else None
                return Value("env", code, fallback, first.literal)
        if (
            names & frozenset({"builtins.dict", "dict"})
            or (isinstance(node.func, cst.Name) and node.func.value == "dict")
        ) and all(arg.keyword is not None for arg in node.args):
            # `dict(config)` copies a mapping this cannot read: not a dict of known keys.
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
                return _format(template, node, code, qualnames)
        accessor = _environ_accessor(node, code, qualnames)
        if accessor is not None:
            return accessor
    if isinstance(node, cst.Dict):
        return Value("dict", code, items=_dict_items(node, qualnames))
    if isinstance(node, cst.Name | cst.Attribute):
        resolved = sorted(qualnames(node))
        return Value("name", code, name=resolved[0] if resolved else code)
    return Value("other", code)


def _dynaconf(node: cst.Call, code: str, qualnames: QualifiedNames) -> Value:
    """`Dynaconf(envvar_prefix="APP", settings_files=["settings.toml"], environments=True)`:
    items "prefix", "environments" and "file:N" for what can be read."""
    items: list[tuple[str, Value]] = []
    for arg in node.args:
        if arg.keyword is None:
            continue
        keyword = arg.keyword.value.lower()
        if keyword in ("envvar_prefix", "environments"):
            items.append((keyword.removeprefix("envvar_"), read_value(arg.value, qualnames)))
        elif keyword in ("settings_files", "settings_file", "includes"):
            value = arg.value
            elements = value.elements if isinstance(value, cst.List | cst.Tuple) else ()
            for index, element in enumerate(elements or [value]):
                node_value = element.value if isinstance(element, cst.Element) else element
                if isinstance(node_value, cst.BaseExpression):
                    items.append((f"file:{keyword}:{index}", read_value(node_value, qualnames)))
    return Value("env-source", code, name="dynaconf", items=tuple(items))


def _environ_accessor(node: cst.Call, code: str, qualnames: QualifiedNames) -> Value | None:
    """`env("DATABASE_URL")`, `env.str("X", default=...)`, `env.db()`: a read of variable X
    through a receiver that may be a django-environ `Env` (the URL resolver checks it)."""
    func = node.func
    if isinstance(func, cst.Attribute) and func.attr.value in ENVIRON_ACCESSORS:
        receiver, method = func.value, func.attr.value
    elif isinstance(func, cst.Name):
        receiver, method = func, ""
    else:
        return None
    if not isinstance(receiver, cst.Name | cst.Attribute):
        return None
    positional = [a.value for a in node.args if a.keyword is None and a.star == ""]
    keywords = {a.keyword.value: a.value for a in node.args if a.keyword is not None}
    var_node = positional[0] if positional else keywords.get("var")
    variable: object = ENVIRON_DEFAULT_VARS.get(method)
    if var_node is not None:
        variable = read_value(var_node, qualnames).literal
    pattern = _KEY_NAME if method == "get" else _ENV_NAME  # dynaconf keys: any case
    if not isinstance(variable, str) or not pattern.fullmatch(variable):
        return None
    default_node = keywords.get("default")
    if default_node is None and method in ENVIRON_DEFAULT_VARS and len(positional) > 1:
        default_node = positional[1]  # `db_url(var, default, engine)`
    items: list[tuple[str, Value]] = [("receiver", read_value(receiver, qualnames))]
    if default_node is not None:
        items.append(("default", read_value(default_node, qualnames)))
    return Value("env-accessor", code, name=variable, items=tuple(items))


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
            parts.append("{" + code_of(part.expression) + "}")
    return "".join(parts)


def _parts(values: list[Value], code: str, text: str) -> Value:
    return Value("fstring", code, text, items=tuple((str(i), v) for i, v in enumerate(values)))


def _text_of(value: Value) -> str:
    if value.kind == "literal" and isinstance(value.literal, str | int):
        return str(value.literal)
    return "{" + value.code + "}"


def _fstring_parts(
    node: cst.FormattedString, qualnames: QualifiedNames
) -> tuple[tuple[str, Value], ...]:
    parts: list[Value] = []
    for part in node.parts:
        if isinstance(part, cst.FormattedStringText):
            parts.append(Value("literal", part.value, part.value))
        elif isinstance(part, cst.FormattedStringExpression):
            parts.append(read_value(part.expression, qualnames))
    return tuple((str(i), v) for i, v in enumerate(parts))


def _binary(node: cst.BinaryOperation, code: str, qualnames: QualifiedNames) -> Value | None:
    """`"postgresql://" + host + ":6432/db"` and `"postgresql://%s:%s/db" % (host, port)`."""
    if isinstance(node.operator, cst.Add):
        flat: list[Value] = []
        for side in (node.left, node.right):
            value = read_value(side, qualnames)
            if value.kind == "fstring" and value.items:
                flat.extend(v for _, v in value.items)
            else:
                flat.append(value)
        if not any(v.kind == "literal" and isinstance(v.literal, str) for v in flat):
            return None  # numbers, or names only: not a string being built
        return _parts(flat, code, "".join(_text_of(v) for v in flat))
    if isinstance(node.operator, cst.Modulo) and isinstance(node.left, cst.SimpleString):
        template = node.left.evaluated_value
        if not isinstance(template, str):
            return None
        right = node.right
        args: list[cst.BaseExpression] = (
            [e.value for e in right.elements] if isinstance(right, cst.Tuple) else [right]
        )
        pieces: list[Value] = []
        holes = iter(args)
        for piece in re.split(r"(%[sd])", template):
            if piece in ("%s", "%d"):
                arg = next(holes, None)
                pieces.append(
                    read_value(arg, qualnames) if arg is not None else Value("other", piece)
                )
            elif piece:
                pieces.append(Value("literal", piece, piece.replace("%%", "%")))
        return _parts(pieces, code, "".join(_text_of(v) for v in pieces))
    return None


def _format(template: str, node: cst.Call, code: str, qualnames: QualifiedNames) -> Value:
    """`"postgresql://{}:{port}/db".format(host, port=6432)`: positional and named holes."""
    positional = [a.value for a in node.args if a.keyword is None and a.star == ""]
    named = {a.keyword.value: a.value for a in node.args if a.keyword is not None}
    values: list[Value] = []
    counter = iter(positional)
    for piece in re.split(r"(\{[^{}]*\})", template):
        if piece.startswith("{") and piece.endswith("}"):
            key = piece[1:-1].split(":", 1)[0].split("!", 1)[0]
            arg = named.get(key) if key and not key.isdigit() else None
            if arg is None and key.isdigit() and int(key) < len(positional):
                arg = positional[int(key)]
            if arg is None and not key:
                arg = next(counter, None)
            values.append(read_value(arg, qualnames) if arg is not None else Value("other", piece))
        elif piece:
            values.append(Value("literal", piece, piece))
    return _parts(values, code, template)


def _builder(node: cst.Call, code: str, qualnames: QualifiedNames) -> Value | None:
    """SQLAlchemy `URL.create`, `make_url`, `url.set/replace/update_query_dict`, pydantic
    `PostgresDsn.build`, and `str.replace` on a URL."""
    names = qualnames(node.func)
    keywords = {a.keyword.value: a.value for a in node.args if a.keyword is not None}
    positional = [a.value for a in node.args if a.keyword is None and a.star == ""]
    if names & URL_CREATE:
        parts = [(k, read_value(v, qualnames)) for k, v in keywords.items() if k in URL_PARTS]
        if positional:
            parts.insert(0, ("drivername", read_value(positional[0], qualnames)))
        return Value("url-build", code, items=tuple(parts))
    if names & MAKE_URL and positional:
        return read_value(positional[0], qualnames)
    if not isinstance(node.func, cst.Attribute):
        return None
    method = node.func.attr.value
    if method == "build" and qualnames(node.func.value) & PYDANTIC_URL_TYPES:
        parts = []
        for key, value in keywords.items():
            name = _PYDANTIC_PARTS.get(key, key)
            if name in URL_PARTS:
                parts.append((name, read_value(value, qualnames)))
        return Value("url-build", code, items=tuple(parts))
    if method in ("set", "replace", "_replace") and keywords and not positional:
        receiver = read_value(node.func.value, qualnames)
        parts = [(k, read_value(v, qualnames)) for k, v in keywords.items() if k in URL_PARTS]
        return Value("url-set", code, items=(("receiver", receiver), *parts))
    if method == "update_query_dict" and positional:
        receiver = read_value(node.func.value, qualnames)
        query = read_value(positional[0], qualnames)
        items = [(f"query:{k}", v) for k, v in query.items] if query.kind == "dict" else []
        return Value("url-set", code, items=(("receiver", receiver), *items))
    if method == "replace" and len(positional) == 2 and not keywords:
        old, new = (read_value(p, qualnames) for p in positional)
        if isinstance(old.literal, str) and isinstance(new.literal, str):
            receiver = read_value(node.func.value, qualnames)
            return Value(
                "str-replace", code, items=(("receiver", receiver), ("old", old), ("new", new))
            )
    return None
