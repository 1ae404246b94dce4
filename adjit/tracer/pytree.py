"""Pytrees: nested tuples, lists, dicts and None whose leaves are arrays, scalars or tensors.

`flatten(tree) -> (leaves, treedef)`; `unflatten(treedef, leaves)` rebuilds the same structure.
A treedef is hashable (transforms key their caches by it) and compares by structure only.
Namedtuples keep their type; dicts are ordered by sorted keys, as JAX orders them.
"""
from __future__ import annotations


class TreeDef:
    """The structure of a pytree: kind, metadata (type / dict keys), children."""
    __slots__ = ("kind", "meta", "children", "num_leaves", "_hash")

    def __init__(self, kind, meta, children):
        self.kind = kind          # "leaf", "none", "tuple", "list", "dict", "namedtuple"
        self.meta = meta
        self.children = children = tuple(children)
        # (the children's own hashes and counts read directly: hashing the tuple of children
        # would call __hash__, a Python method, once per child)
        n, hs = 0, []
        for c in children:
            n += c.num_leaves
            hs.append(c._hash)
        self.num_leaves = 1 if kind == "leaf" else n
        self._hash = hash((kind, meta, tuple(hs)))

    def __hash__(self):
        return self._hash

    def __eq__(self, other):
        return (isinstance(other, TreeDef) and self._hash == other._hash and
                self.kind == other.kind and self.meta == other.meta and
                self.children == other.children)

    def __repr__(self):
        if self.kind == "leaf":
            return "*"
        if self.kind == "none":
            return "None"
        inner = ", ".join(map(repr, self.children))
        if self.kind == "dict":
            return "{" + ", ".join(f"{k!r}: {c!r}" for k, c in zip(self.meta, self.children)) + "}"
        if self.kind == "list":
            return f"[{inner}]"
        return f"({inner})"


LEAF = TreeDef("leaf", None, ())


def _sort_key(k):
    return (type(k).__name__, k)


def _sorted_keys(d):
    """A dict's keys in pytree order: by type name, then value (`_sort_key`); keys of one
    type sort the same by value alone, without a Python call per key."""
    if len(set(map(type, d))) <= 1:
        return sorted(d)
    return sorted(d, key=_sort_key)


def flatten(tree, is_leaf=None):
    """(leaves, treedef) of a pytree; `is_leaf(x)` may stop the descent early."""
    t = type(tree)
    if is_leaf is None and tree is not None and t is not tuple and t is not list and \
            t is not dict and not isinstance(tree, tuple):
        return [tree], LEAF  # a leaf itself (every transform's array argument): no descent
    leaves = []

    def rec(x):
        if is_leaf is not None and is_leaf(x):
            leaves.append(x)
            return LEAF
        if x is None:
            return TreeDef("none", None, ())
        t = type(x)
        if t is tuple:
            return TreeDef("tuple", None, kids(x))
        if t is list:
            return TreeDef("list", None, kids(x))
        if t is dict:
            keys = tuple(_sorted_keys(x))
            return TreeDef("dict", keys, kids([x[k] for k in keys]))
        if isinstance(x, tuple) and hasattr(x, "_fields"):
            return TreeDef("namedtuple", t, kids(x))
        leaves.append(x)
        return LEAF

    def kids(xs):
        out = []
        for c in xs:
            tc = type(c)
            if is_leaf is None and c is not None and tc is not tuple and tc is not list and \
                    tc is not dict and not isinstance(c, tuple):
                leaves.append(c)  # a leaf (the common child): no call
                out.append(LEAF)
            else:
                out.append(rec(c))
        return out

    try:
        td = rec(tree)
    finally:
        # nested functions naming each other are a cycle that would hold the leaves
        rec = kids = None
    return leaves, td


def unflatten(td: TreeDef, leaves):
    """Rebuild the tree `td` describes from an iterable of leaves (in flatten's order)."""
    it = iter(leaves)
    if td.kind == "leaf":
        return next(it)

    def rec(d):
        if d.kind == "leaf":
            return next(it)
        if d.kind == "none":
            return None
        kids = [rec(c) for c in d.children]
        if d.kind == "tuple":
            return tuple(kids)
        if d.kind == "list":
            return kids
        if d.kind == "dict":
            return dict(zip(d.meta, kids))
        return d.meta(*kids)

    try:
        out = rec(td)
    finally:
        rec = None  # break the self-reference: it kept every leaf (result arrays) alive
    return out


def tree_map(fn, tree, *rest, is_leaf=None):
    """Apply `fn` leafwise to one tree (or several trees of the same structure)."""
    leaves, td = flatten(tree, is_leaf)
    others = [flatten(r, is_leaf)[0] for r in rest]
    return unflatten(td, [fn(x, *ys) for x, *ys in zip(leaves, *others)])


def leaves(tree):
    """`flatten(tree)[0]`: the leaves in the same order, without building the treedef."""
    t = type(tree)
    if tree is not None and t is not tuple and t is not list and t is not dict and \
            not isinstance(tree, tuple):
        return [tree]
    out = []
    _gather(tree, out)
    return out


def _gather(x, out):
    """Append the leaves of pytree `x` to `out` (flatten's order)."""
    t = type(x)
    if t is tuple or t is list:
        kids = x
    elif t is dict:
        kids = [x[k] for k in _sorted_keys(x)]
    elif x is None:
        return
    elif isinstance(x, tuple) and hasattr(x, "_fields"):
        kids = x
    else:
        out.append(x)
        return
    for c in kids:
        tc = type(c)
        if c is not None and tc is not tuple and tc is not list and tc is not dict and \
                not isinstance(c, tuple):
            out.append(c)  # a leaf (the common child): no call
        else:
            _gather(c, out)


def broadcast_prefix(prefix, tree, what="in_axes"):
    """Leaves of `prefix` (e.g. vmap's in_axes) repeated for every leaf of `tree` below them."""
    if prefix is None or isinstance(prefix, int):
        return [prefix] * flatten(tree)[1].num_leaves
    if isinstance(prefix, (tuple, list)) and isinstance(tree, (tuple, list)):
        if len(prefix) != len(tree):
            raise ValueError(f"{what} has {len(prefix)} entries but the value has {len(tree)}")
        out = []
        for p, t in zip(prefix, tree):
            out.extend(broadcast_prefix(p, t, what))
        return out
    if isinstance(prefix, dict) and isinstance(tree, dict):
        if set(prefix) != set(tree):
            raise ValueError(f"{what} keys {sorted(prefix)} differ from the value's "
                             f"{sorted(tree)}")
        out = []
        for k in _sorted_keys(tree):
            out.extend(broadcast_prefix(prefix[k], tree[k], what))
        return out
    raise ValueError(f"{what} {prefix!r} does not match the structure of the value "
                     f"({flatten(tree)[1]!r})")
