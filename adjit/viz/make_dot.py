"""`adjit.make_dot(tensor)`: the backward graph as a graphviz.Digraph, drawn as torchviz 0.0.3
draws it: grad_fn nodes grey, leaves requiring grad light blue with their size, the outputs
green, and the base of an output that is a view dark green with a dotted edge."""
from __future__ import annotations


def _size(shape):
    return "(" + ", ".join(str(int(d)) for d in shape) + ")"


def make_dot(var, params=None, show_attrs=False, show_saved=False, max_attr_chars=50):
    """Digraph of the operations that produced `var` (its grad_fn and what feeds it).

    >>> import adjit
    >>> x = adjit.ones(2, requires_grad=True)
    >>> print(adjit.make_dot((x * 2).sum()).source.count("->"))  # x, Acc, Mul, Sum, out
    4
    """
    from graphviz import Digraph
    names = {id(v): k for k, v in (params or {}).items()}
    dot = Digraph(node_attr=dict(style="filled", shape="box", align="left", fontsize="10",
                                 ranksep="0.1", height="0.2", fontname="monospace"),
                  graph_attr=dict(size="12,12"))
    seen = set()  # ids of grad_fns and tensors drawn (torchviz keeps the objects)
    keep = []  # the tensors whose ids are in `seen` stay alive while drawing

    def label(t, name=None):
        return "%s\n %s" % (name if name else names.get(id(t), ""), _size(t.shape))

    def add_nodes(fn):
        stack = [fn]
        while stack:
            f = stack.pop()
            if id(f) in seen:
                continue
            seen.add(id(f))
            if hasattr(f, "variable_node"):
                v = f.variable
                keep.append(v)
                seen.add(id(v))
                dot.node(str(id(v)), label(v), fillcolor="lightblue")
                dot.edge(str(id(v)), str(id(f)))
            dot.node(str(id(f)), f.name())
            for nxt, _ in reversed(f.next_functions):
                if nxt is not None:
                    dot.edge(str(id(nxt)), str(id(f)))
                    stack.append(nxt)

    def add_base_tensor(v, color="darkolivegreen1"):
        if id(v) in seen:
            return
        seen.add(id(v))
        keep.append(v)
        dot.node(str(id(v)), label(v), fillcolor=color)
        if v.grad_fn is not None:
            add_nodes(v.grad_fn)
            dot.edge(str(id(v.grad_fn)), str(id(v)))
        if v._is_view():
            add_base_tensor(v._base, color="darkolivegreen3")
            dot.edge(str(id(v._base)), str(id(v)), style="dotted")

    for v in var if isinstance(var, tuple) else (var,):
        add_base_tensor(v)
    size = max(12, len(dot.body) * 0.15)
    dot.graph_attr.update(size=f"{size},{size}")
    return dot
