"""Run a cell file like a Jupyter notebook and render each cell's output as text.

A cell file is Python source split by marker lines ``# %% [In N]`` (``N`` is the notebook's
execution count; never-executed cells are ``# %% [In ] K``; a repeated marker gets its
occurrence number appended).  All cells share one namespace, as in a kernel.  Each cell's output
is: captured stdout, then captured stderr and warnings, then the displayed value of a bare last
expression, then ``ExceptionType: message`` if the cell raised (the run goes on regardless).

``normalize`` removes what legitimately differs between two runs or between adjit and torch
(addresses, module names, warning locations) so outputs can be compared as text.

CLI: ``adjit notebook FILE [--normalize]`` prints the whole run.
"""

from __future__ import annotations

import ast
import contextlib
import io
import linecache
import re
import sys
import tokenize
import types
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

MARKER = re.compile(r"^# %% \[In [^\]]*\].*$", re.MULTILINE)


@dataclass
class Cell:
    header: str  # the marker line, e.g. "# %% [In 3]"
    source: str


@dataclass
class CellResult:
    header: str
    source: str
    output: str  # everything the cell showed, see module docstring
    error: str | None = None  # "ExceptionType: message" when the cell raised


def parse_cells(text: str) -> list[Cell]:
    """Split cell-file text at marker lines; text before the first marker is ignored."""
    marks = list(MARKER.finditer(text))
    cells = []
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        body = text[mark.end():end]
        # One newline ends the marker line; blank lines before the next marker only separate.
        cells.append(Cell(mark.group(0), body[1:].rstrip("\n") if body else ""))
    return cells


# --- IPython.display -------------------------------------------------------------------------

def _install_display_stand_in() -> None:
    """Provide ``IPython.display`` when IPython is not installed.

    Outside a running kernel IPython's ``display`` just prints ``str`` of each object, and a
    ``Math`` prints as ``<IPython.core.display.Math object>``; the stand-in does the same.
    """
    try:
        import IPython.display  # noqa: F401
        return
    except ImportError:
        pass

    class DisplayObject:
        def __init__(self, data=None, url=None, filename=None, metadata=None):
            self.data = data

        def __repr__(self):
            return f"<IPython.core.display.{type(self).__name__} object>"

    def _subclass(name):
        return type(name, (DisplayObject,), {"__module__": "IPython.core.display"})

    def display(*objs, **kwargs):
        print(*objs)

    display_mod = types.ModuleType("IPython.core.display")
    for name in ("Math", "Latex", "HTML", "Markdown", "Image", "SVG", "JSON", "Pretty"):
        setattr(display_mod, name, _subclass(name))
    DisplayObject.__module__ = "IPython.core.display"
    display_mod.DisplayObject = DisplayObject
    display_mod.display = display
    core = types.ModuleType("IPython.core")
    core.display = display_mod
    root = types.ModuleType("IPython")
    root.core, root.display = core, display_mod
    root.__path__ = []  # make it a package so "from IPython.display import x" resolves
    core.__path__ = []
    for name, mod in (("IPython", root), ("IPython.core", core),
                      ("IPython.core.display", display_mod), ("IPython.display", display_mod)):
        sys.modules.setdefault(name, mod)


# --- graphviz digraphs -----------------------------------------------------------------------

_DOT_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|<[^>]*>|->|[=\[\],;]|[^\s"=\[\],;<>-]+|-')


def _unquote(tok: str) -> str:
    if tok.startswith('"'):
        return re.sub(r'\\(.)', r'\1', tok[1:-1])
    return tok


def _parse_dot_statement(stmt: str):
    """Return ("node", id, attrs) or ("edge", (src, dst), attrs) or None for other statements."""
    toks = _DOT_TOKEN.findall(stmt)
    attrs: dict[str, str] = {}
    if "[" in toks:
        i = toks.index("[")
        body = [t for t in toks[i + 1:] if t not in (",", ";", "]")]
        for j in range(0, len(body) - 2, 3):
            if body[j + 1] == "=":
                attrs[_unquote(body[j])] = _unquote(body[j + 2])
        toks = toks[:i]
    if len(toks) == 3 and toks[1] == "->":
        return "edge", (_unquote(toks[0]), _unquote(toks[2])), attrs
    if len(toks) == 1 and toks[0] not in ("graph", "node", "edge"):
        return "node", _unquote(toks[0]), attrs
    return None


def _label_text(label: str) -> str:
    # torchviz labels tensors as "name\n (2, 2)"; whitespace carries no meaning there.
    return " ".join(label.split())


def is_digraph(value) -> bool:
    return type(value).__module__.startswith("graphviz") and hasattr(value, "body")


def describe_dot(digraph) -> str:
    """Layout-free description of a graphviz graph: sorted node labels, then edges by label.

    Node ids (torchviz uses object addresses) are replaced by the node's label; a node's
    fillcolor and an edge's style are kept because they mark leaf/output tensors and views.
    """
    labels: dict[str, str] = {}
    colors: dict[str, str] = {}
    edges = []
    for stmt in digraph.body:
        parsed = _parse_dot_statement(stmt)
        if parsed is None:
            continue
        kind, key, attrs = parsed
        if kind == "node":
            labels[key] = _label_text(attrs.get("label", key))
            if "fillcolor" in attrs:
                colors[key] = attrs["fillcolor"]
        else:
            edges.append((key, attrs.get("style")))

    def name(node_id):
        return labels.get(node_id, "?")

    nodes = sorted(name(n) + (f" [{colors[n]}]" if n in colors else "") for n in labels)
    edge_lines = sorted(
        f"{name(src)} -> {name(dst)}" + (f" [{style}]" if style else "")
        for (src, dst), style in edges
    )
    lines = [f"<{type(digraph).__name__}: {len(nodes)} nodes, {len(edge_lines)} edges>"]
    lines += [f"  node {n}" for n in nodes] + [f"  edge {e}" for e in edge_lines]
    return "\n".join(lines)


# --- running ---------------------------------------------------------------------------------

def display_text(value) -> str:
    """What a notebook shows for a cell's last expression (IPython's plain-text displayhook)."""
    if isinstance(value, type):
        # IPython prints classes as "module.QualName" (e.g. "torch.Tensor").
        mod = value.__module__
        return value.__qualname__ if mod == "builtins" else f"{mod}.{value.__qualname__}"
    if is_digraph(value):
        return describe_dot(value)
    return repr(value)


def _ends_with_semicolon(source: str) -> bool:
    """IPython hides the value of a last expression that ends with ';'."""
    toks = [t for t in tokenize.generate_tokens(io.StringIO(source).readline)
            if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE,
                              tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT)]
    return bool(toks) and toks[-1].string == ";"


def _register_source(filename: str, source: str) -> None:
    # Lets tracebacks and warnings echo the cell's source line, as IPython does.
    lines = [line + "\n" for line in source.split("\n")]
    linecache.cache[filename] = (len(source), None, lines, filename)


_CELL_FILE_PREFIX = "<cell "
# Python's default filters hide these categories unless raised by code in __main__ (the cells).
_HIDDEN_OUTSIDE_MAIN = (DeprecationWarning, PendingDeprecationWarning, ImportWarning,
                        ResourceWarning)


def _format_warnings(caught) -> str:
    seen = set()
    parts = []
    for w in caught:
        from_cell = w.filename.startswith(_CELL_FILE_PREFIX)
        if issubclass(w.category, _HIDDEN_OUTSIDE_MAIN) and not from_cell:
            continue
        # Python's "default" action: one report per message and location within a cell.
        key = (str(w.message), w.category, w.filename, w.lineno)
        if key in seen:
            continue
        seen.add(key)
        parts.append(warnings.formatwarning(w.message, w.category, w.filename, w.lineno))
    return "".join(parts)


def run_cell(cell: Cell, namespace: dict, index: int = 0) -> CellResult:
    filename = f"{_CELL_FILE_PREFIX}{index} {cell.header[5:]}>"
    _register_source(filename, cell.source)
    stdout, stderr = io.StringIO(), io.StringIO()
    shown = ""
    error = None
    with contextlib.ExitStack() as stack:
        caught = stack.enter_context(warnings.catch_warnings(record=True))
        warnings.simplefilter("always")
        stack.enter_context(contextlib.redirect_stdout(stdout))
        stack.enter_context(contextlib.redirect_stderr(stderr))
        try:
            tree = ast.parse(cell.source, filename)
            last = None
            if tree.body and isinstance(tree.body[-1], ast.Expr):
                last = ast.Expression(tree.body.pop().value)
            exec(compile(tree, filename, "exec"), namespace)
            if last is not None:
                value = eval(compile(last, filename, "eval"), namespace)
                if value is not None and not _ends_with_semicolon(cell.source):
                    namespace["_"] = value
                    shown = display_text(value) + "\n"
        except Exception as exc:  # a failing cell is part of the notebook's output
            error = f"{type(exc).__name__}: {exc}"
    output = stdout.getvalue() + stderr.getvalue() + _format_warnings(caught) + shown
    if error is not None:
        output += error + "\n"
    return CellResult(cell.header, cell.source, output, error)


def run_cells(path, transform: Callable[[str], str] | None = None) -> list[CellResult]:
    """Execute every cell of the cell file at ``path`` in one fresh shared namespace.

    ``transform`` rewrites each cell's source first (used to run the same file under torch).
    """
    _install_display_stand_in()
    cells = parse_cells(Path(path).read_text())
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    results = []
    for i, cell in enumerate(cells):
        if transform is not None:
            cell = Cell(cell.header, transform(cell.source))
        results.append(run_cell(cell, namespace, i))
    return results


def format_run(results) -> str:
    """A whole run as text: each cell's marker line followed by its output."""
    parts = []
    for r in results:
        out = r.output if r.output.endswith("\n") or not r.output else r.output + "\n"
        parts.append(f"{r.header}\n{out}")
    return "".join(parts)


def parse_run(text: str) -> list[tuple[str, str]]:
    """Inverse of ``format_run``: (marker line, output) pairs."""
    return [(c.header, c.source + "\n" if c.source else "") for c in parse_cells(text)]


# --- normalisation ---------------------------------------------------------------------------

_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]+\b")
_TORCH_NAME = re.compile(r"\btorch(?=\.[A-Za-z_])")
_WARNING_HEAD = re.compile(r"^\S[^\n]*?:\d+: (\w*Warning): ", re.MULTILINE)
_TRIGGERED = re.compile(r" \(Triggered internally at [^\n]*?\.\)")


def normalize(text: str) -> str:
    """Erase differences that do not matter when comparing notebook outputs.

    - memory addresses ``0x7f86305835e0`` -> ``0x…``;
    - module/type names ``torch.X`` -> ``adjit.X`` (``torch.Tensor``, ``torch.float64``);
    - warning locations ``/any/file.py:12: UserWarning: msg`` -> ``<file>:<line>: UserWarning:
      msg``, keeping the echoed source line below it, and torch's C++ origin note
      ``(Triggered internally at …)``.
    """
    text = _ADDRESS.sub("0x…", text)
    text = _TRIGGERED.sub("", text)
    text = _WARNING_HEAD.sub(lambda m: f"<file>:<line>: {m.group(1)}: ", text)
    return _TORCH_NAME.sub("adjit", text)


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="adjit notebook", description=__doc__)
    parser.add_argument("file", help="cell file with '# %% [In N]' markers")
    parser.add_argument("--normalize", action="store_true", help="apply normalize() to output")
    args = parser.parse_args(argv)
    text = format_run(run_cells(args.file))
    sys.stdout.write(normalize(text) if args.normalize else text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
