"""`adjit.make_dot(tensor)`: the backward graph as a graphviz.Digraph, drawn as torchviz draws
it (grad_fn nodes in grey boxes, leaves in light blue with their size, the root in green)."""
from __future__ import annotations


def _size(shape):
    return "(" + ", ".join(str(int(d)) for d in shape) + ")"


def make_dot(var, params=None, show_attrs=False, show_saved=False, max_attr_chars=50):
    """Digraph of the operations that produced `var` (its grad_fn and what feeds it).

    >>> import adjit
    >>> x = adjit.ones(2, requires_grad=True)
    >>> print(adjit.make_dot((x * 2).sum()).source.count("->"))
    3
    """
    from graphviz import Digraph
    names = {id(v): k for k, v in (params or {}).items()}
    dot = Digraph(node_attr=dict(style="filled", shape="box", align="left", fontsize="10",
                                 ranksep="0.1", height="0.2", fontname="monospace"),
                  graph_attr=dict(size="12,12"))

    def label(t, name=None):
        return "%s\n %s" % (name if name else names.get(id(t), ""), _size(t.shape))

    seen = set()

    def visit(fn):
        stack = [fn]
        while stack:
            f = stack.pop()
            if id(f) in seen:
                continue
            seen.add(id(f))
            if hasattr(f, "variable_node"):
                v = f.variable
                dot.node(str(id(f.variable_node)), label(v), fillcolor="lightblue")
                dot.edge(str(id(f.variable_node)), str(id(f)))
            dot.node(str(id(f)), f.name())
            for nxt, _ in f.next_functions:
                if nxt is not None:
                    dot.edge(str(id(nxt)), str(id(f)))
                    stack.append(nxt)

    roots = var if isinstance(var, (tuple, list)) else (var,)
    for v in roots:
        dot.node(str(id(v)), label(v), fillcolor="darkolivegreen1")
        if v.grad_fn is not None:
            visit(v.grad_fn)
            dot.edge(str(id(v.grad_fn)), str(id(v)))
    size = max(12, len(dot.body) * 0.15)
    dot.graph_attr.update(size=f"{size},{size}")
    return dot
