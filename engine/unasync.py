"""Rendered asynchronous Python turned into its synchronous twin ("unasync").

The session core is written once, for asyncio. A framework that serves requests
synchronously (WSGI) gets the same core with `async`/`await` removed and the
asyncio-only names mapped to their blocking counterparts: `asyncio.Lock` becomes
`threading.Lock`, `redis.asyncio` becomes `redis`, an async SQLAlchemy engine a
plain one. The rewrite works on tokens, so formatting and comments survive, and
it keeps the imports as ruff's isort would order them. What a token rewrite
cannot express is chosen in the template itself with the `sync` flag.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

# Names whose synchronous counterpart is another name.
RENAMES = {
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "__aiter__": "__iter__",
    "__anext__": "__next__",
    "AsyncIterator": "Iterator",
    "AsyncIterable": "Iterable",
    "AsyncGenerator": "Generator",
    "AsyncConnection": "Connection",
    "AsyncEngine": "Engine",
    "StopAsyncIteration": "StopIteration",
    "aclose": "close",
    "asynccontextmanager": "contextmanager",
    "create_async_engine": "create_engine",
    "_ASYNC_DRIVERS": "_TESTED_DRIVERS",
    "_await": "_result",
}
# Dotted names (modules, or module attributes) with a synchronous counterpart.
DOTTED = {
    "asyncio.Lock": "threading.Lock",
    "redis.asyncio.cluster": "redis.cluster",
    "redis.asyncio": "redis",
    "sqlalchemy.ext.asyncio": "sqlalchemy",
}
# Module imports a rewritten dotted name needs.
_MODULE_OF = {"threading.Lock": "threading"}
# Async SQLAlchemy driver names in URLs and docs, and the synchronous driver used instead.
DRIVERS = {
    "sqlite+aiosqlite": "sqlite",
    "postgresql+asyncpg": "postgresql+psycopg",
    "mysql+asyncmy": "mysql+pymysql",
    "mysql+aiomysql": "mysql+pymysql",
    "mariadb+asyncmy": "mariadb+pymysql",
    "mariadb+aiomysql": "mariadb+pymysql",
}
# Wording in docstrings and comments.
PHRASES = {
    "Asynchronous ": "Synchronous ",
    "An async engine": "An engine",
    "an async engine": "an engine",
    "SQLAlchemy async URL": "SQLAlchemy URL",
    "SQLAlchemy 2 (asyncio)": "SQLAlchemy 2",
    "(SQLAlchemy, async)": "(SQLAlchemy)",
    "(redis.asyncio)": "(redis-py)",
    "An async SQLAlchemy engine": "A SQLAlchemy engine",
    "`redis.asyncio.": "`redis.",
    "sync or async callable": "callable",
    "(sync or async)": "",
    "make_asgi_app()": "make_wsgi_app()",
}
_LINE_LENGTH = 88
# Maps a token position (row, column) to an offset in the text.
_Offset = Callable[[tuple[int, int]], int]


class UnasyncError(ValueError):
    """The source uses an asynchronous construct the rewrite does not know."""


@dataclass(frozen=True)
class _Edit:
    start: int
    end: int
    text: str


def to_sync(source: str) -> str:
    """The synchronous twin of `source`, a complete Python module.

    Raises:
        UnasyncError: `source` is not valid Python, or uses an asynchronous
            construct without a synchronous counterpart here.
    """
    try:
        ast.parse(source)
    except SyntaxError as exc:
        raise UnasyncError(f"not valid Python: {exc.msg} (line {exc.lineno})") from None
    text = _drop_timeouts(source)
    text = _drop_event_loop_markers(text)
    text = _rewrite_tokens(text)
    text = _rename(text)
    text = _rewrite_gathers(text)
    text = _rewrite_text(text)
    text = _rejoin(text)
    text = _tidy_imports(text)
    _check_synchronous(text)
    return text


def _tokens(text: str) -> list[tokenize.TokenInfo]:
    return [
        token
        for token in tokenize.generate_tokens(io.StringIO(text).readline)
        if token.type not in (tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT)
    ]


def _offsets(text: str) -> list[int]:
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def _apply(text: str, edits: Iterable[_Edit]) -> str:
    out, position = [], 0
    for edit in sorted(edits, key=lambda e: (e.start, e.end)):
        if edit.start < position:
            continue  # inside a span another edit already rewrote
        out.append(text[position : edit.start])
        out.append(edit.text)
        position = edit.end
    out.append(text[position:])
    return "".join(out)


def _drop_timeouts(text: str) -> str:
    """`async with asyncio.timeout(...):` goes, and its body moves out one level.

    Blocking drivers enforce their own connect and read timeouts instead.
    """
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        match = re.match(r"(\s*)async with asyncio\.timeout\(.*\):\s*$", line)
        if not match:
            out.append(line)
            index += 1
            continue
        indent = len(match.group(1))
        index += 1
        while index < len(lines) and (
            not lines[index].strip() or len(lines[index]) - len(lines[index].lstrip()) > indent
        ):
            body = lines[index]
            out.append(body[4:] if body.strip() else body)
            index += 1
    return "".join(out)


# The pytest marker that runs a test on an event loop, and the fixture choosing the loop.
_LOOP_MARKER = "pytest.mark.anyio"
_LOOP_FIXTURE = "anyio_backend"


def _drop_event_loop_markers(text: str) -> str:
    """Tests lose `@pytest.mark.anyio`, `pytestmark = pytest.mark.anyio` and the
    `anyio_backend` fixture: a synchronous test needs no event loop.

    The blank lines around a dropped statement become as many as the wider side
    had, so the spacing stays what ruff format writes.
    """
    if _LOOP_MARKER not in text:
        return text
    lines = text.splitlines(keepends=True)
    decorators: set[int] = set()
    statements: list[tuple[int, int]] = []  # [first, end) line indexes
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name == _LOOP_FIXTURE and node.col_offset == 0:
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
                statements.append((first, node.end_lineno or node.lineno))
                continue
            for decorator in node.decorator_list:
                if ast.unparse(decorator) == _LOOP_MARKER:
                    decorators.update(range(decorator.lineno - 1, decorator.end_lineno or decorator.lineno))
        elif (
            isinstance(node, ast.Assign)
            and [ast.unparse(target) for target in node.targets] == ["pytestmark"]
            and ast.unparse(node.value) == _LOOP_MARKER
        ):
            statements.append((node.lineno - 1, node.end_lineno or node.lineno))
    replaced: dict[int, tuple[int, str]] = {}  # first line index -> (end, replacement)
    for first, end in _merged(lines, statements):
        before = 0
        while first - before > 0 and not lines[first - before - 1].strip():
            before += 1
        after = 0
        while end + after < len(lines) and not lines[end + after].strip():
            after += 1
        replaced[first - before] = (end + after, "\n" * max(before, after))
    out: list[str] = []
    index = 0
    while index < len(lines):
        if index in replaced:
            index, replacement = replaced[index]
            out.append(replacement)
            continue
        if index not in decorators:
            out.append(lines[index])
        index += 1
    return "".join(out)


def _merged(lines: Sequence[str], spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Line spans, with spans that only blank lines separate joined into one."""
    merged: list[tuple[int, int]] = []
    for first, end in sorted(spans):
        if merged and all(not line.strip() for line in lines[merged[-1][1] : first]):
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((first, end))
    return merged


def _rewrite_tokens(text: str) -> str:
    tokens = _tokens(text)
    starts = _offsets(text)

    def at(position: tuple[int, int]) -> int:
        return starts[position[0] - 1] + position[1]

    edits: list[_Edit] = []
    for index, token in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        previous = tokens[index - 1] if index else None
        if token.type == tokenize.NAME and token.string in ("async", "await") and following is not None:
            if token.string == "async" and following.string not in ("def", "with", "for"):
                continue
            edits.append(_Edit(at(token.start), at(following.start), ""))
            if token.string == "await" and previous is not None and previous.string == "(":
                closing = _matching(tokens, index - 1)
                after = tokens[closing + 1] if closing + 1 < len(tokens) else None
                if after is not None and after.string in (".", "["):
                    # `(await x).y` reads `x.y` once nothing is awaited.
                    edits.append(_Edit(at(previous.start), at(previous.end), ""))
                    edits.append(_Edit(at(tokens[closing].start), at(tokens[closing].end), ""))
            continue
        if token.type == tokenize.OP and token.string == "." and following is not None:
            if following.string == "sync_engine":
                # An async engine's `.sync_engine` is the engine itself here.
                edits.append(_Edit(at(token.start), at(following.end), ""))
            elif following.string == "run_sync" and previous is not None:
                edits.extend(_run_sync(tokens, index, text, at))
            continue
        if token.type != tokenize.NAME or (previous is not None and previous.string == "."):
            continue
        chain = _dotted(tokens, index)
        if chain[:2] == ["asyncio", "to_thread"] and len(chain) == 2:
            edits.append(_to_thread(tokens, index, text, at))
            continue
        for name in sorted(DOTTED, key=len, reverse=True):
            parts = name.split(".")
            if chain[: len(parts)] == parts:
                last = tokens[index + 2 * len(parts) - 2]
                edits.append(_Edit(at(token.start), at(last.end), DOTTED[name]))
                break
    return _apply(text, edits)


def _dotted(tokens: Sequence[tokenize.TokenInfo], index: int) -> list[str]:
    """The parts of the dotted name that starts at `index`."""
    chain = [tokens[index].string]
    end = index
    while end + 2 < len(tokens) and tokens[end + 1].string == "." and tokens[end + 2].type == tokenize.NAME:
        chain.append(tokens[end + 2].string)
        end += 2
    return chain


def _matching(tokens: Sequence[tokenize.TokenInfo], index: int) -> int:
    depth = 0
    for position in range(index, len(tokens)):
        if tokens[position].string in "([{" and tokens[position].type == tokenize.OP:
            depth += 1
        elif tokens[position].string in ")]}" and tokens[position].type == tokenize.OP:
            depth -= 1
            if depth == 0:
                return position
    raise UnasyncError("unbalanced brackets")


def _to_thread(tokens: Sequence[tokenize.TokenInfo], index: int, text: str, at: _Offset) -> _Edit:
    """`asyncio.to_thread(function, *args)` is `function(*args)` in a blocking caller."""
    opening = index + 3
    closing = _matching(tokens, opening)
    depth = 0
    for position in range(opening + 1, closing):
        token = tokens[position]
        if token.type == tokenize.OP and token.string in "([{":
            depth += 1
        elif token.type == tokenize.OP and token.string in ")]}":
            depth -= 1
        elif depth == 0 and token.string == ",":
            function = text[at(tokens[opening + 1].start) : at(token.start)]
            return _Edit(at(tokens[index].start), at(tokens[position + 1].start), f"{function}(")
    function = text[at(tokens[opening + 1].start) : at(tokens[closing].start)]
    return _Edit(at(tokens[index].start), at(tokens[closing].end), f"{function}()")


def _run_sync(tokens: Sequence[tokenize.TokenInfo], dot: int, text: str, at: _Offset) -> list[_Edit]:
    """`connection.run_sync(function)` is `function(connection)` on a blocking connection."""
    receiver = tokens[dot - 1]
    if receiver.type != tokenize.NAME or tokens[dot + 2].string != "(":
        raise UnasyncError("run_sync must be called on a plain name")
    closing = _matching(tokens, dot + 2)
    function = text[at(tokens[dot + 3].start) : at(tokens[closing].start)].strip()
    if "," in function:
        raise UnasyncError("run_sync with extra arguments is not supported")
    return [_Edit(at(receiver.start), at(tokens[closing].end), f"{function}({receiver.string})")]


def _rewrite_gathers(text: str) -> str:
    """`asyncio.gather(*(call for x in xs))` becomes a loop, or a list where its result is used."""
    pattern = re.compile(r"asyncio\.gather\(\s*\*\(")
    while (match := pattern.search(text)) is not None:
        tree = ast.parse(text)
        node = _gather_at(tree, text, match.start())
        generator = node.args[0]
        if not (isinstance(generator, ast.Starred) and isinstance(generator.value, ast.GeneratorExp)):
            raise UnasyncError("asyncio.gather must be called as gather(*(... for ...))")
        inner = generator.value
        if len(inner.generators) != 1 or len(inner.generators[0].ifs) > 1:
            raise UnasyncError("asyncio.gather over a nested generator is not supported")
        loop = inner.generators[0]
        element, target, iterable, *condition = (
            " ".join((ast.get_source_segment(text, part) or "").split())
            for part in (inner.elt, loop.target, loop.iter, *loop.ifs)
        )
        starts = _offsets(text)
        start = starts[node.lineno - 1] + node.col_offset
        end = starts[(node.end_lineno or node.lineno) - 1] + (node.end_col_offset or 0)
        line_start = starts[node.lineno - 1]
        indent = text[line_start:start]
        if indent.strip() == "":
            # A statement: nothing uses the results, so a plain loop says it best.
            body = f"{indent}    {element}"
            if condition:
                body = f"{indent}    if {condition[0]}:\n    {body}"
            replacement = f"for {target} in {iterable}:\n{body}"
        else:
            replacement = _wrapped_list(element, target, iterable, condition, indent)
        text = text[:start] + replacement + text[end:]
    return text


def _gather_at(tree: ast.AST, text: str, offset: int) -> ast.Call:
    starts = _offsets(text)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and starts[node.lineno - 1] + node.col_offset == offset:
            return node
    raise UnasyncError("asyncio.gather call not found")


def _wrapped_list(element: str, target: str, iterable: str, condition: list[str], prefix: str) -> str:
    """A list comprehension laid out the way ruff format lays it out."""
    clauses = [element, f"for {target} in {iterable}", *(f"if {test}" for test in condition)]
    flat = f"[{' '.join(clauses)}]"
    if len(prefix) + len(flat) <= _LINE_LENGTH:
        return flat
    indent = " " * (len(prefix) - len(prefix.lstrip()))
    single = f"{indent}    {' '.join(clauses)}"
    if len(single) <= _LINE_LENGTH:
        return f"[\n{single}\n{indent}]"
    return "[\n" + "".join(f"{indent}    {clause}\n" for clause in clauses) + f"{indent}]"


def _rejoin(text: str) -> str:
    """Join brackets split over three lines when the shorter code now fits on one.

    `await` made those statements too long for one line; ruff format joins them
    again once it is gone, so the output matches what ruff would write.
    """
    while True:
        lines = text.splitlines(keepends=True)
        tokens = _tokens(text)
        for index, token in enumerate(tokens):
            if token.type != tokenize.OP or token.string not in "([{":
                continue
            row = token.end[0]
            following = tokens[index + 1] if index + 1 < len(tokens) else None
            if following is None or following.start[0] != row + 1:
                continue  # not the last token of its line
            closing = tokens[_matching(tokens, index)]
            if closing.start[0] != row + 2 or closing.start[1] != len(lines[row + 1]) - len(lines[row + 1].lstrip()):
                continue
            body = lines[row].strip()
            if body.endswith(",") or "#" in body or "#" in lines[row + 1]:
                continue  # a magic trailing comma, or a comment, keeps the split
            joined = lines[row - 1].rstrip("\n") + body + lines[row + 1].strip()
            joined = _IDENTITY_LIST.sub(r"list(\2)", joined)
            if len(joined) > _LINE_LENGTH:
                continue
            text = "".join([*lines[: row - 1], joined + "\n", *lines[row + 2 :]])
            break
        else:
            return text


# `[key for key in keys]` is `list(keys)`, as ruff's C416 asks.
_IDENTITY_LIST = re.compile(r"\[(\w+) for \1 in ([^\[\]]+)\]$")


def _rename(text: str) -> str:
    """Whole names only, in code and in the f-strings and docs that mention them."""
    for old, new in RENAMES.items():
        text = re.sub(rf"\b{old}\b", new, text)
    return text


def _rewrite_text(text: str) -> str:
    """Driver names and wording, in code strings, docstrings and comments alike;
    `Awaitable[T] | T` and `Awaitable[T]` are plain `T`."""
    text = re.sub(r"\bAwaitable\[([^\[\]]+)\] \| \1\b", r"\1", text)
    text = re.sub(r"\bAwaitable\[([^\[\]]+)\]", r"\1", text)
    for old, new in {**DRIVERS, **PHRASES}.items():
        text = text.replace(old, new)
    return text


_ASYNC_NODES = (ast.AsyncFunctionDef, ast.AsyncWith, ast.AsyncFor, ast.Await)


def _check_synchronous(text: str) -> None:
    """Nothing asynchronous may be left: a leftover would fail only at run time."""
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.comprehension) and node.is_async:
            raise UnasyncError(f"line {node.target.lineno}: an `async for` is left")
        if isinstance(node, _ASYNC_NODES):
            raise UnasyncError(f"line {node.lineno}: an asynchronous construct is left")
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "asyncio":
            raise UnasyncError(f"line {node.lineno}: no synchronous counterpart for asyncio.{node.attr}")
        if isinstance(node, ast.Attribute) and ast.unparse(node) == _LOOP_MARKER:
            raise UnasyncError(
                f"line {node.lineno}: {_LOOP_MARKER} is left; only a decorator or a plain pytestmark goes"
            )


# Imports.


@dataclass
class _Import:
    first: int  # line index of the statement
    last: int
    module: str | None  # `from module import ...`; None for `import a`
    names: list[str]  # "name" or "name as alias"
    comment: str = ""


def _tidy_imports(text: str) -> str:
    """Drop imports the synchronous code no longer uses, add the ones it now needs,
    merge imports of one module and sort them as ruff's isort does."""
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    statements = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    if not statements:
        return text
    used = _used_names(tree)
    needed = {_MODULE_OF[name] for name in _MODULE_OF if name in text}
    parsed: list[_Import] = []
    for node in statements:
        first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
        comment = next((line.partition("#")[2].strip() for line in (lines[first], lines[last]) if "#" in line), "")
        if isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            names = [_alias(alias) for alias in node.names]
            if module != "__future__":
                names = [name for name in names if _bound(name) in used]
            parsed.append(_Import(first, last, module, names, comment))
        else:
            names = [_alias(alias) for alias in node.names]
            names = [name for name in names if _bound(name).split(".")[0] in used or name in needed]
            parsed.append(_Import(first, last, None, names, comment))
    present = {name for item in parsed if item.module is None for name in item.names}
    for module in sorted(needed - present):
        anchor = next((item for item in parsed if item.module is None and _stdlib_block(item, parsed)), None)
        if anchor is None:
            raise UnasyncError(f"no place to import {module}")
        parsed.append(_Import(anchor.first, anchor.first - 1, None, [module]))
    # Blocks: import statements separated by blank lines keep their sections.
    blocks: dict[int, list[_Import]] = {}
    for item in parsed:
        blocks.setdefault(_block_start(lines, item.first), []).append(item)
    replaced: dict[int, str] = {}
    dropped: set[int] = set()
    for start, items in blocks.items():
        merged: dict[tuple[bool, str], _Import] = {}
        for item in items:
            key = (item.module is not None, item.module or item.names[0] if item.names else "")
            if item.module is None:
                for name in item.names:
                    merged[(False, name)] = _Import(item.first, item.last, None, [name], item.comment)
            elif key in merged:
                merged[key].names = list(dict.fromkeys(merged[key].names + item.names))
            else:
                merged[key] = _Import(item.first, item.last, item.module, list(item.names), item.comment)
            for index in range(item.first, item.last + 1):
                dropped.add(index)
        ordered = sorted(
            (item for item in merged.values() if item.names),
            key=lambda item: (item.module is not None, _module_key(item.module or item.names[0])),
        )
        replaced[start] = "".join(_render(item) for item in ordered)
    out: list[str] = []
    for index, line in enumerate(lines):
        if index in replaced:
            out.append(replaced[index])
        if index not in dropped:
            out.append(line)
    return _collapse_blank_lines("".join(out))


def _alias(alias: ast.alias) -> str:
    return f"{alias.name} as {alias.asname}" if alias.asname else alias.name


def _bound(name: str) -> str:
    return name.rpartition(" as ")[2]


def _used_names(tree: ast.AST) -> set[str]:
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            used.add(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isidentifier():
            used.add(node.value)  # a name in __all__
    return used


def _stdlib_block(item: _Import, parsed: Sequence[_Import]) -> bool:
    return item.module is None and not any(name.startswith(".") for name in item.names)


def _block_start(lines: Sequence[str], index: int) -> int:
    while index > 0 and lines[index - 1].strip() and not lines[index - 1].lstrip().startswith(("#", '"')):
        index -= 1
    return index


def _module_key(module: str) -> tuple[int, str]:
    # Relative imports: farther parents first, as isort orders them.
    dots = len(module) - len(module.lstrip("."))
    return (-dots, module.lstrip(".").lower())


def _name_key(name: str) -> tuple[int, str]:
    bound = name.split(" as ")[0]
    if bound.isupper() and len(bound) > 1:
        kind = 0
    elif bound[:1].isupper():
        kind = 1
    else:
        kind = 2
    return (kind, bound.lower())


def _render(item: _Import) -> str:
    suffix = f"  # {item.comment}" if item.comment else ""
    if item.module is None:
        return f"import {item.names[0]}{suffix}\n"
    names = item.names if item.module == "__future__" else sorted(item.names, key=_name_key)
    flat = f"from {item.module} import {', '.join(names)}"
    if len(flat) + len(suffix) <= _LINE_LENGTH:
        return flat + suffix + "\n"
    body = "".join(f"    {name},\n" for name in names)
    return f"from {item.module} import ({suffix}\n{body})\n"


def _collapse_blank_lines(text: str) -> str:
    """An import section emptied by the rewrite leaves no extra blank lines."""
    return re.sub(r"\n{3,}(?=(import |from ))", "\n\n", text)
