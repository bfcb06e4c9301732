"""Edit the arguments of a call: set keywords or dict keys, strip URL query parameters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import (
    MetadataWrapper,
    PositionProvider,
)

from dbpoollint.codemods.line_split import DEFAULT_LINE_LENGTH, fit

# --- DPL402 / DPL403: edit the arguments of one call -------------------------------------------


@dataclass(frozen=True)
class CallEdit:
    """Edit the call starting at (line, column) (1-based column, as findings report it)."""

    line: int
    column: int
    # DPL402: (keyword, python code) to set, directly or inside the `container` dict argument.
    container: str = ""
    entries: tuple[tuple[str, str], ...] = ()
    # DPL403: URL query parameters to remove from string literals among the arguments.
    strip_params: tuple[str, ...] = ()
    # ruff's `line-length`: a one-line call the edit pushes past it is split.
    line_length: int = DEFAULT_LINE_LENGTH


def _set_keywords(call: cst.Call, entries: Sequence[tuple[str, str]]) -> cst.Call:
    args = list(call.args)
    for keyword, code in entries:
        value = cst.parse_expression(code)
        existing = next(
            (i for i, a in enumerate(args) if a.keyword is not None and a.keyword.value == keyword),
            None,
        )
        if existing is not None:
            args[existing] = args[existing].with_changes(value=value)
            continue
        new = cst.Arg(
            value=value,
            keyword=cst.Name(keyword),
            equal=cst.AssignEqual(
                whitespace_before=cst.SimpleWhitespace(""),
                whitespace_after=cst.SimpleWhitespace(""),
            ),
        )
        # the call's own layout: one argument per line stays so, no trailing space
        args = list(_with_arg(call.with_changes(args=args), new).args)
    return call.with_changes(args=args)


def _without_comment(
    whitespace: cst.BaseParenthesizableWhitespace,
) -> cst.BaseParenthesizableWhitespace:
    """The line break and indentation of the first item, without a comment after the bracket."""
    if isinstance(whitespace, cst.ParenthesizedWhitespace):
        return whitespace.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=())
    return cst.SimpleWhitespace(" ")


def _set_dict_entries(node: cst.Dict, entries: Sequence[tuple[str, str]]) -> cst.Dict:
    elements = list(node.elements)
    for keyword, code in entries:
        value = cst.parse_expression(code)
        index = next(
            (
                i
                for i, e in enumerate(elements)
                if isinstance(e, cst.DictElement)
                and isinstance(e.key, cst.SimpleString)
                and e.key.evaluated_value == keyword
            ),
            None,
        )
        if index is not None:
            element = elements[index]
            assert isinstance(element, cst.DictElement)
            elements[index] = element.with_changes(value=value)
            continue
        new = cst.DictElement(key=cst.SimpleString(f'"{keyword}"'), value=value)
        if elements and isinstance(elements[-1].comma, cst.Comma):
            last = elements[-1]
            between = cst.Comma(whitespace_after=_without_comment(node.lbrace.whitespace_after))
            elements = [
                *elements[:-1],
                last.with_changes(comma=between),
                new.with_changes(comma=last.comma),
            ]
        elif elements:
            comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
            elements = [*elements[:-1], elements[-1].with_changes(comma=comma), new]
        else:
            elements = [new]
    return node.with_changes(elements=elements)


def _dict_code(entries: Sequence[tuple[str, str]]) -> str:
    return "{" + ", ".join(f'"{k}": {v}' for k, v in entries) + "}"


def _set_container(
    call: cst.Call, container: str, entries: Sequence[tuple[str, str]]
) -> cst.Call | None:
    """None when the options are a variable: adding to it here would be guesswork."""
    index = next(
        (
            i
            for i, a in enumerate(call.args)
            if a.keyword is not None and a.keyword.value == container
        ),
        None,
    )
    if index is None:
        return _set_keywords(call, [(container, _dict_code(entries))])
    value = call.args[index].value
    if isinstance(value, cst.Dict):
        new_value: cst.BaseExpression = _set_dict_entries(value, entries)
    elif (
        isinstance(value, cst.Call)
        and isinstance(value.func, cst.Name)
        and value.func.value == "dict"
    ):
        new_value = _set_keywords(value, entries)
    else:
        return None
    args = list(call.args)
    args[index] = args[index].with_changes(value=new_value)
    return call.with_changes(args=args)


def strip_query_params(url: str, params: Sequence[str]) -> str:
    base, question, query = url.partition("?")
    if not question:
        return url
    kept = [p for p in query.split("&") if p and p.split("=", 1)[0] not in params]
    return base + ("?" + "&".join(kept) if kept else "")


class _StripParams(cst.CSTTransformer):
    def __init__(self, params: Sequence[str]) -> None:
        super().__init__()
        self.params = params
        self.changed = False

    def leave_SimpleString(
        self, original_node: cst.SimpleString, updated_node: cst.SimpleString
    ) -> cst.SimpleString:
        value = original_node.evaluated_value
        if not isinstance(value, str) or original_node.raw_value != value or "?" not in value:
            return updated_node
        stripped = strip_query_params(value, self.params)
        if stripped == value:
            return updated_node
        self.changed = True
        return updated_node.with_changes(
            value=f"{original_node.prefix}{original_node.quote}{stripped}{original_node.quote}"
        )


class _CallEditor(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, edits: Sequence[CallEdit], lines: Sequence[str]) -> None:
        super().__init__()
        self.edits = {(e.line, e.column): e for e in edits}
        self.done: set[tuple[int, int]] = set()
        self.lines = lines

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        position = self.get_metadata(PositionProvider, original_node)
        key = (position.start.line, position.start.column + 1)
        edit = self.edits.get(key)
        if edit is None:
            return updated_node
        result: cst.Call | None = updated_node
        if edit.entries:
            if edit.container:
                result = _set_container(updated_node, edit.container, edit.entries)
            else:
                result = _set_keywords(updated_node, edit.entries)
        if edit.strip_params and result is not None:
            stripper = _StripParams(edit.strip_params)
            args = [a.with_changes(value=a.value.visit(stripper)) for a in result.args]
            result = result.with_changes(args=args) if stripper.changed else None
        if result is None:
            return updated_node
        self.done.add(key)
        where = (position.start.line, position.end.line, position.start.column)
        return fit(original_node, result, where, self.lines, edit.line_length)


def edit_calls(source: str, edits: Sequence[CallEdit]) -> tuple[str, list[bool]]:
    """Apply every edit in one transform; per edit, whether it could be made."""
    module = cst.parse_module(source)
    editor = _CallEditor(edits, source.splitlines(keepends=True))
    fixed = MetadataWrapper(module, unsafe_skip_copy=True).visit(editor)
    return fixed.code, [(e.line, e.column) in editor.done for e in edits]


# --- add a keyword argument or a dict key (DPL201-DPL205) --------------------------------------


@dataclass(frozen=True)
class AddArgument:
    """Add `keyword=value` to the call at (line, column), `"keyword": value` to a dict there,
    or `within={"keyword": value}` (a key inside `connect_args=`, created when absent)."""

    line: int
    column: int
    keyword: str
    value: str
    within: str = ""
    # The project's line length (ruff's `line-length`): a one-line call that the new argument
    # pushes past it is split the way `ruff format` would split it.
    line_length: int = DEFAULT_LINE_LENGTH


# --- layout: the new item follows the existing one, comments stay on their lines ------------


def _comment_line(
    whitespace: cst.BaseParenthesizableWhitespace,
) -> cst.TrailingWhitespace | None:
    """The end of the current line (with its comment) when the whitespace breaks the line."""
    if isinstance(whitespace, cst.ParenthesizedWhitespace):
        return whitespace.first_line
    return None


def _clean(whitespace: cst.BaseParenthesizableWhitespace) -> cst.BaseParenthesizableWhitespace:
    """The same line break and indentation, without a comment or blank lines."""
    if isinstance(whitespace, cst.ParenthesizedWhitespace):
        return whitespace.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=())
    return whitespace


def _between(
    items: Sequence[cst.Arg] | Sequence[cst.BaseDictElement],
    opening: cst.BaseParenthesizableWhitespace,
    ending: cst.TrailingWhitespace | None,
) -> cst.Comma:
    """The comma before a new last item: the layout between existing items (or after the
    opening bracket), ending the previous item's line with its own comment."""
    if len(items) > 1 and isinstance(items[-2].comma, cst.Comma):
        layout = items[-2].comma.whitespace_after
    else:
        layout = opening
    if not isinstance(layout, cst.ParenthesizedWhitespace):
        return cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    layout = _clean(layout)
    if ending is not None:
        assert isinstance(layout, cst.ParenthesizedWhitespace)
        layout = layout.with_changes(first_line=ending)
    return cst.Comma(whitespace_after=layout)


def _with_arg(call: cst.Call, arg: cst.Arg) -> cst.Call:
    args = list(call.args)
    if not args:
        return call.with_changes(args=[arg])
    last = args[-1]
    if isinstance(last.comma, cst.Comma):
        # `x,  # comment` then the closing bracket: the comment stays after `x`, the new item
        # takes a clean copy of the trailing comma and the bracket stays where it was.
        trailing = last.comma.whitespace_after
        between = _between(args, call.whitespace_before_args, _comment_line(trailing))
        args[-1] = last.with_changes(
            comma=between.with_changes(whitespace_before=last.comma.whitespace_before)
        )
        args.append(
            arg.with_changes(comma=last.comma.with_changes(whitespace_after=_clean(trailing)))
        )
    else:
        closing = last.whitespace_after_arg
        between = _between(args, call.whitespace_before_args, _comment_line(closing))
        args[-1] = last.with_changes(comma=between, whitespace_after_arg=cst.SimpleWhitespace(""))
        args.append(arg.with_changes(whitespace_after_arg=_clean(closing)))
    return call.with_changes(args=args)


def _with_element(node: cst.Dict, element: cst.DictElement) -> cst.Dict:
    elements = list(node.elements)
    if not elements:
        return node.with_changes(elements=[element])
    last = elements[-1]
    if isinstance(last.comma, cst.Comma) and isinstance(
        last.comma.whitespace_after, cst.ParenthesizedWhitespace
    ):
        trailing = last.comma.whitespace_after
        between = _between(elements, node.lbrace.whitespace_after, _comment_line(trailing))
        elements[-1] = last.with_changes(comma=between)
        elements.append(
            element.with_changes(comma=last.comma.with_changes(whitespace_after=_clean(trailing)))
        )
        return node.with_changes(elements=elements)
    # The line break before `}` (and a comment after the last item) is the brace's.
    closing = node.rbrace.whitespace_before
    if isinstance(last.comma, cst.Comma):
        element = element.with_changes(comma=last.comma)
    between = _between(elements, node.lbrace.whitespace_after, _comment_line(closing))
    elements[-1] = last.with_changes(comma=between)
    elements.append(element)
    rbrace = node.rbrace.with_changes(whitespace_before=_clean(closing))
    return node.with_changes(elements=elements, rbrace=rbrace)


def _keyword_arg(keyword: str, value: str, quote: str) -> cst.Arg:
    return cst.Arg(
        value=_requote(cst.parse_expression(value), quote),
        keyword=cst.Name(keyword),
        equal=cst.AssignEqual(
            whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
        ),
    )


def _dict_element(key: str, value: str, quote: str) -> cst.DictElement:
    return cst.DictElement(
        cst.SimpleString(f"{quote}{key}{quote}"), _requote(cst.parse_expression(value), quote)
    )


# --- the file's quote style -----------------------------------------------------------------


class _Quotes(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.counts = {"'": 0, '"': 0}

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        if node.quote in self.counts:
            self.counts[node.quote] += 1


def quote_style(module: cst.Module) -> str:
    """The quote most single-line strings of the module use (double when tied)."""
    counter = _Quotes()
    module.visit(counter)
    return "'" if counter.counts["'"] > counter.counts['"'] else '"'


class _Requote(cst.CSTTransformer):
    def __init__(self, quote: str) -> None:
        super().__init__()
        self.quote = quote

    def leave_SimpleString(
        self, original_node: cst.SimpleString, updated_node: cst.SimpleString
    ) -> cst.SimpleString:
        old = original_node.quote
        body = original_node.raw_value
        if old == self.quote or len(old) != 1 or self.quote in body or "\\" in body:
            return updated_node
        return updated_node.with_changes(
            value=f"{original_node.prefix}{self.quote}{body}{self.quote}"
        )


def _requote(expression: cst.BaseExpression, quote: str) -> cst.BaseExpression:
    result = expression.visit(_Requote(quote))
    assert isinstance(result, cst.BaseExpression)
    return result


class _AddArguments(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, requests: Sequence[AddArgument], lines: Sequence[str], quote: str) -> None:
        super().__init__()
        self.by_position: dict[tuple[int, int], list[AddArgument]] = {}
        for request in requests:
            self.by_position.setdefault((request.line, request.column), []).append(request)
        self.done: set[AddArgument] = set()
        self.lines = lines
        self.quote = quote

    def _requests(self, node: cst.CSTNode) -> list[AddArgument]:
        position = self.get_metadata(PositionProvider, node)
        return self.by_position.get((position.start.line, position.start.column + 1), [])

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        requests = self._requests(original_node)
        for request in requests:
            updated_node = self._add(request, updated_node)
        if requests and updated_node is not original_node:
            updated_node = self._fit(original_node, updated_node, requests[0].line_length)
        return updated_node

    def _add(self, request: AddArgument, node: cst.Call) -> cst.Call:
        names = {a.keyword.value for a in node.args if a.keyword is not None}
        quote = self.quote
        if not request.within:
            if request.keyword not in names:
                node = _with_arg(node, _keyword_arg(request.keyword, request.value, quote))
            self.done.add(request)
            return node
        if request.within not in names:
            value = f"{{{quote}{request.keyword}{quote}: {request.value}}}"
            self.done.add(request)
            return _with_arg(node, _keyword_arg(request.within, value, quote))
        args = list(node.args)
        for index, arg in enumerate(args):
            if (
                arg.keyword is not None
                and arg.keyword.value == request.within
                and isinstance(arg.value, cst.Dict)
                and all(isinstance(e, cst.DictElement) for e in arg.value.elements)
            ):
                element = _dict_element(request.keyword, request.value, quote)
                args[index] = arg.with_changes(value=_with_element(arg.value, element))
                self.done.add(request)
        return node.with_changes(args=args)

    def _fit(self, original: cst.Call, updated: cst.Call, line_length: int) -> cst.Call:
        """Split a one-line call that now runs past the line length (it fitted before)."""
        position = self.get_metadata(PositionProvider, original)
        where = (position.start.line, position.end.line, position.start.column)
        return fit(original, updated, where, self.lines, line_length)

    def leave_Dict(self, original_node: cst.Dict, updated_node: cst.Dict) -> cst.Dict:
        for request in self._requests(original_node):
            quote = _key_quote(updated_node, self.quote)
            keys = {
                e.key.evaluated_value
                for e in updated_node.elements
                if isinstance(e, cst.DictElement) and isinstance(e.key, cst.SimpleString)
            }
            if request.keyword not in keys:
                element = _dict_element(request.keyword, request.value, quote)
                updated_node = _with_element(updated_node, element)
            self.done.add(request)
        return updated_node


def _key_quote(node: cst.Dict, default: str) -> str:
    """The quote the dict's own string keys use: `{'ENGINE': ...}` gets a `'KEY'` too."""
    for element in node.elements:
        if (
            isinstance(element, cst.DictElement)
            and isinstance(element.key, cst.SimpleString)
            and len(element.key.quote) == 1
        ):
            return element.key.quote
    return default


def add_arguments(source: str, requests: Sequence[AddArgument]) -> tuple[str, set[AddArgument]]:
    """Apply every request; return the new source and the requests that were applied."""
    wrapper = MetadataWrapper(cst.parse_module(source), unsafe_skip_copy=True)
    quote = quote_style(wrapper.module)
    transformer = _AddArguments(requests, source.splitlines(keepends=True), quote)
    fixed = wrapper.visit(transformer)
    return fixed.code, transformer.done
