"""Rewrite the program so that every binding of a name reports (line, name, value) to the tracer.

`x = expr` becomes `x = expr; __gw_bind__(line, ("x", x))`; a for loop reports its target at the
top of each iteration; a top-level bare expression reports its value like a notebook cell's output.
"""

from __future__ import annotations

import ast

BIND = "__gw_bind__"
DISPLAY = "__gw_display__"


def _stored_names(target: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(target):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id not in names:
            names.append(node.id)
    return names


def _new(node: ast.AST, line: int) -> ast.AST:
    """A node the rewrite adds, placed at `line` (only new nodes: the program's own keep theirs)."""
    node.lineno = node.end_lineno = line  # type: ignore[attr-defined]
    node.col_offset = node.end_col_offset = 0  # type: ignore[attr-defined]
    return node


def _bind_call(names: list[str], line: int, at: int) -> ast.stmt:
    pairs = [
        _new(ast.Tuple([_new(ast.Constant(n), at), _new(ast.Name(n, ast.Load()), at)], ast.Load()), at) for n in names
    ]
    call = _new(ast.Call(_new(ast.Name(BIND, ast.Load()), at), [_new(ast.Constant(line), at), *pairs], []), at)
    return _new(ast.Expr(call), at)  # type: ignore[return-value]


def _display_call(stmt: ast.Expr) -> ast.stmt:
    at = stmt.lineno
    call = _new(ast.Call(_new(ast.Name(DISPLAY, ast.Load()), at), [_new(ast.Constant(at), at), stmt.value], []), at)
    return _new(ast.Expr(call), at)  # type: ignore[return-value]


def _rewrite_body(body: list[ast.stmt], top_level: bool) -> list[ast.stmt]:
    out: list[ast.stmt] = []
    last = len(body) - 1
    for i, stmt in enumerate(body):
        _rewrite_children(stmt)
        if top_level and isinstance(stmt, ast.Expr) and (i == last or not isinstance(stmt.value, (ast.Call, ast.Await))):
            if not isinstance(stmt.value, ast.Constant):  # docstrings and stray strings are not outputs
                out.append(_display_call(stmt))
                continue
        out.append(stmt)
        if isinstance(stmt, ast.Assign):
            names = [n for t in stmt.targets for n in _stored_names(t)]
        elif isinstance(stmt, (ast.AugAssign, ast.AnnAssign)) and stmt.value is not None:
            names = _stored_names(stmt.target)
        else:
            names = []
        if names:
            out.append(_bind_call(names, stmt.lineno, stmt.lineno))
    return out


def _rewrite_children(node: ast.AST) -> None:
    if isinstance(node, (ast.For, ast.AsyncFor)):
        names = _stored_names(node.target)
        node.body = _rewrite_body(node.body, False)
        if names:
            node.body.insert(0, _bind_call(names, node.lineno, node.lineno))
        node.orelse = _rewrite_body(node.orelse, False)
        return
    if isinstance(node, (ast.With, ast.AsyncWith)):
        names = [n for item in node.items if item.optional_vars is not None for n in _stored_names(item.optional_vars)]
        node.body = _rewrite_body(node.body, False)
        if names:
            node.body.insert(0, _bind_call(names, node.lineno, node.lineno))
        return
    for field in ("body", "orelse", "finalbody"):
        stmts = getattr(node, field, None)
        if isinstance(stmts, list) and stmts and isinstance(stmts[0], ast.stmt):
            setattr(node, field, _rewrite_body(stmts, False))
    for handler in getattr(node, "handlers", []) or []:
        handler.body = _rewrite_body(handler.body, False)
    for case in getattr(node, "cases", []) or []:
        case.body = _rewrite_body(case.body, False)


def instrument(source: str, filename: str) -> object:
    """Compile the program with binding reports; raises SyntaxError like compile()."""
    tree = ast.parse(source, filename=filename, mode="exec")
    tree.body = _rewrite_body(tree.body, True)
    return compile(tree, filename, "exec")
