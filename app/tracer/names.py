"""Rewrite the program so that every binding of a name reports (line, name, value) to the tracer.

`x = expr` becomes `x = expr; __gw_bind__(line, "x", x)`; a for loop reports its target at the
top of each iteration; a top-level bare expression reports its value like a notebook cell's output.

The rewrite is part of every run's fixed cost (scripts/bench_choices.py sets it beside a plain compile): it
looks into compound statements only, takes `x = ...` without walking the target, and passes names
and values as flat arguments (fewer nodes to compile).
"""

from __future__ import annotations

import ast
from types import CodeType
from typing import TypeVar

BIND = "__gw_bind__"
DISPLAY = "__gw_display__"
LOOP = "__gw_loop__"  # __gw_loop__(line): an iteration of the top-level loop at `line` begins; (0): it ended

_LOAD = ast.Load()  # ast.parse shares one instance too
_Name, _Constant, _Call, _Expr = ast.Name, ast.Constant, ast.Call, ast.Expr
_Node = TypeVar("_Node", bound=ast.AST)


def _stored_names(target: ast.AST) -> list[str]:
    if type(target) is _Name:  # `x = ...`: the common case
        return [target.id]
    names: list[str] = []
    for node in ast.walk(target):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id not in names:
            names.append(node.id)
    return names


def _at(node: _Node, line: int) -> _Node:
    """A node the rewrite adds, placed at `line` (only new nodes: the program's own keep theirs)."""
    node.lineno = node.end_lineno = line  # type: ignore[attr-defined]  # every AST node has positions; the stubs give them to expr and stmt only
    node.col_offset = node.end_col_offset = 0  # type: ignore[attr-defined]  # as above
    return node


def _call(func: str, args: list[ast.expr], at: int) -> ast.stmt:
    """`func(*args)` as a statement at line `at` (`args` are placed already)."""
    return _at(_Expr(_at(_Call(_at(_Name(func, _LOAD), at), args, []), at)), at)


def _bind_call(names: list[str], at: int) -> ast.stmt:
    """`__gw_bind__(at, "x", x, "y", y)`: flat pairs, no tuple node each (fewer nodes to compile)."""
    args: list[ast.expr] = [_at(_Constant(at), at)]
    for n in names:
        args += (_at(_Constant(n), at), _at(_Name(n, _LOAD), at))
    return _call(BIND, args, at)


def _display_call(stmt: ast.Expr) -> ast.stmt:
    at = stmt.lineno
    return _call(DISPLAY, [_at(_Constant(at), at), stmt.value], at)


_Assign, _AugAssign, _AnnAssign = ast.Assign, ast.AugAssign, ast.AnnAssign
_FOR_EFFECT = (ast.Call, ast.Await)  # a bare call before the last statement is run for its effect, not shown
_FOR = (ast.For, ast.AsyncFor)
_WITH = (ast.With, ast.AsyncWith)
# Statements with statement lists inside; every other statement has none.
_COMPOUND = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    *_FOR,
    *_WITH,
    ast.While,
    ast.If,
    ast.Try,
    ast.TryStar,
    ast.Match,
)


_LOOPS = (*_FOR, ast.While)


def _tracked_loop(stmt: ast.For | ast.AsyncFor | ast.While) -> ast.stmt:
    """`for ...: __gw_loop__(line); body`, inside `try: ... finally: __gw_loop__(0)`."""
    at = stmt.lineno
    stmt.body.insert(0, _call(LOOP, [_at(_Constant(at), at)], at))
    done = _call(LOOP, [_at(_Constant(0), at)], at)
    return _at(ast.Try(body=[stmt], handlers=[], orelse=[], finalbody=[done]), at)


def _rewrite_body(body: list[ast.stmt], top_level: bool, outer: bool = False) -> list[ast.stmt]:
    """`top_level`: the module's own statements; `outer`: outside every function, class and loop."""
    out: list[ast.stmt] = []
    last = len(body) - 1
    for i, stmt in enumerate(body):
        kind = type(stmt)
        names: list[str] = []
        if kind is _Assign:
            names = [n for t in stmt.targets for n in _stored_names(t)]  # type: ignore[attr-defined]  # `kind is X` (cheaper than isinstance on this path) does not narrow for mypy
        elif kind is _AugAssign or kind is _AnnAssign:
            if stmt.value is not None:  # type: ignore[attr-defined]  # as above
                names = _stored_names(stmt.target)  # type: ignore[attr-defined]  # as above
        elif kind is _Expr and top_level and (i == last or not isinstance(stmt.value, _FOR_EFFECT)):  # type: ignore[attr-defined]  # as above
            if not isinstance(stmt.value, _Constant):  # type: ignore[attr-defined]  # docstrings and stray strings are not outputs
                out.append(_display_call(stmt))  # type: ignore[arg-type]  # as above: an Expr
                continue
        elif isinstance(stmt, _COMPOUND):
            _rewrite_children(stmt, outer)
            if outer and isinstance(stmt, _LOOPS):
                out.append(_tracked_loop(stmt))
                continue
        out.append(stmt)
        if names:
            out.append(_bind_call(names, stmt.lineno))
    return out


def _rewrite_children(node: ast.AST, outer: bool) -> None:
    """The statements inside `node`; `outer` as in _rewrite_body, for node itself."""
    if isinstance(node, _FOR):
        names = _stored_names(node.target)
        node.body = _rewrite_body(node.body, False)
        if names:
            node.body.insert(0, _bind_call(names, node.lineno))
        node.orelse = _rewrite_body(node.orelse, False)
        return
    if isinstance(node, _WITH):
        names = [n for item in node.items if item.optional_vars is not None for n in _stored_names(item.optional_vars)]
        node.body = _rewrite_body(node.body, False, outer)
        if names:
            node.body.insert(0, _bind_call(names, node.lineno))
        return
    inner = outer and isinstance(node, (ast.If, ast.Try, ast.TryStar, ast.Match))  # not a function, class or loop
    for field in ("body", "orelse", "finalbody"):
        stmts = getattr(node, field, None)
        if isinstance(stmts, list) and stmts and isinstance(stmts[0], ast.stmt):
            setattr(node, field, _rewrite_body(stmts, False, inner))
    for handler in getattr(node, "handlers", None) or ():
        handler.body = _rewrite_body(handler.body, False, inner)
    for case in getattr(node, "cases", None) or ():
        case.body = _rewrite_body(case.body, False, inner)


class _Walrus(ast.NodeTransformer):
    """`(s := expr)` becomes `(s := expr, __gw_bind__(line, "s", s))[0]`: reported where it binds, inside
    any expression (an `if` or `while` test). Not inside a comprehension or lambda: their frame is not
    the scope the name is bound in."""

    def visit_NamedExpr(self, node: ast.NamedExpr) -> ast.expr:
        self.generic_visit(node)
        at = node.lineno
        name = node.target.id
        args: list[ast.expr] = [_at(_Constant(at), at), _at(_Constant(name), at), _at(_Name(name, _LOAD), at)]
        report = _at(_Call(_at(_Name(BIND, _LOAD), at), args, []), at)
        pair = ast.copy_location(ast.Tuple([node, report], _LOAD), node)
        return ast.copy_location(ast.Subscript(pair, ast.copy_location(_Constant(0), node), _LOAD), node)

    def visit(self, node: ast.AST) -> ast.AST:
        return node if isinstance(node, _OWN_FRAME) else super().visit(node)


_OWN_FRAME = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Lambda)  # a frame of their own


def _rewrite(source: str, filename: str) -> ast.Module:
    tree = ast.parse(source, filename=filename, mode="exec")
    if ":=" in source:  # the rare program with one: no walk over every expression of the others
        _Walrus().visit(tree)  # in place: a module is never replaced, only expressions inside it
    tree.body = _rewrite_body(tree.body, True, True)
    return tree


def instrument(source: str, filename: str) -> CodeType:
    """Compile the program with binding reports; raises SyntaxError like compile()."""
    return compile(_rewrite(source, filename), filename, "exec", dont_inherit=True)  # not this module's __future__ imports


def bound_names(source: str) -> list[str]:
    """Every name the rewritten program reports to `__gw_bind__`, each once: what a what-if can put
    a value in place of. Raises SyntaxError like compile()."""
    found: dict[str, None] = {}
    for node in ast.walk(_rewrite(source, "<unknown>")):
        if type(node) is _Call and type(node.func) is _Name and node.func.id == BIND:
            for arg in node.args[1::2]:
                found[arg.value] = None  # type: ignore[attr-defined]  # the names: constants the rewrite made
    return list(found)
