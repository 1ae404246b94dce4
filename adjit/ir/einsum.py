"""einsum as IR: parse NumPy's subscripts (string or interleaved sublists, ellipsis, implicit
output), then contract the operands pairwise in the order `np.einsum_path` picks, each pair one
dot_general laid out for GEMM (batch, free, contracted).

Labels are any hashable: a letter, or ('.', r) for the r-th ellipsis axis counted from the
right (ellipsis axes broadcast right-aligned, as NumPy's do). A label's extent is the one extent
other than 1 among its axes: an axis of extent 1 under a label of a larger extent broadcasts (it
is squeezed away, so nothing is materialised). Repeated labels in one operand take the diagonal
(one gather of n elements from the flattened pair of axes); labels of one operand that nothing
else needs are summed before the product.
"""
from __future__ import annotations

import builtins

import numpy as np

from . import ops

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # NumPy's sublist ints 0..51
OPTIMIZE = (False, True, "greedy", "optimal")


def _shape(x):
    return tuple(ops.shape(x))


# --- parsing -----------------------------------------------------------------------------------
def sublists_to_string(args, who="einsum"):
    """The interleaved form einsum(op0, sub0, op1, sub1, ..., [out]) -> (string, operands)."""
    args = list(args)
    out = args.pop() if len(args) % 2 else None
    ops_, subs = args[0::2], args[1::2]

    def conv(sub):
        s = []
        for v in sub:
            if v is Ellipsis:
                s.append("...")
            elif isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v < 52:
                s.append(LETTERS[int(v)])
            elif isinstance(v, (int, np.integer)):
                raise ValueError("subscript is not within the valid range [0, 52)")
            else:
                raise TypeError(f"{who}: a sublist holds ints in [0, 52) and Ellipsis, not "
                                f"{type(v).__name__}")
        return "".join(s)
    spec = ",".join(conv(s) for s in subs) + ("" if out is None else "->" + conv(out))
    return spec, ops_


def _terms(term, where):
    for c in term.replace("...", ""):
        if c not in LETTERS:
            raise ValueError(f"invalid subscript '{c}' in einstein sum subscripts string, "
                             "subscripts must be letters")
    if term.count("...") > 1 or "." in term.replace("...", "", 1):
        raise ValueError(f"einstein sum subscripts string contains a '.' that is not part of "
                         f"an ellipsis ('...') in {where}")
    return term


def parse(spec, shapes, sum_unlisted_ellipsis=False):
    """(labels of each operand, output labels) of subscripts `spec` over operand shapes.
    `sum_unlisted_ellipsis`: an explicit output without '...' sums the ellipsis axes (PyTorch);
    NumPy refuses unless they are 0-d."""
    spec = spec.replace(" ", "")
    if spec.count("->") > 1 or spec.replace("->", "").count("-") or \
            spec.replace("->", "").count(">"):
        raise ValueError("einstein sum subscript string does not contain proper '->' output "
                         "specified")
    explicit = "->" in spec
    ins, out = spec.split("->") if explicit else (spec, None)
    terms = ins.split(",")
    if len(terms) != len(shapes):  # NumPy's own wording (which reads the other way round)
        raise ValueError(f"{'more' if len(terms) > len(shapes) else 'fewer'} operands "
                         "provided to einstein sum function than specified in the subscripts "
                         f"string ({len(terms)} terms, {len(shapes)} operands)")
    labels, nell = [], 0
    for i, (t, shp) in enumerate(zip(terms, shapes)):
        t = _terms(t, f"operand {i}")
        letters = list(t.replace("...", ""))
        if "..." in t:
            k = len(shp) - len(letters)
            if k < 0:
                raise ValueError(f"einstein sum subscripts string contains too many subscripts "
                                 f"for operand {i}")
            a, b = t.split("...")
            labels.append(list(a) + [(".", r) for r in reversed(range(k))] + list(b))
            nell = builtins.max(nell, k)
        else:
            if len(letters) > len(shp):
                raise ValueError(f"einstein sum subscripts string contains too many subscripts "
                                 f"for operand {i}")
            if len(letters) < len(shp):
                raise ValueError(f"operand has more dimensions than subscripts given in "
                                 f"einstein sum, but no '...' ellipsis provided to broadcast "
                                 f"the extra dimensions (operand {i})")
            labels.append(letters)
    ell = [(".", r) for r in reversed(range(nell))]
    seen = {c for ls in labels for c in ls if isinstance(c, str)}
    if not explicit:
        counts = {}
        for ls in labels:
            for c in ls:
                counts[c] = counts.get(c, 0) + 1
        outl = ell + sorted(c for c in seen if counts[c] == 1)
    else:
        out = _terms(out, "the output")
        for c in out.replace("...", ""):
            if c not in seen:
                raise ValueError(f"einstein sum subscripts string included output subscript "
                                 f"'{c}' which never appeared in an input")
            if out.count(c) > 1:
                raise ValueError(f"einstein sum subscripts string includes output subscript "
                                 f"'{c}' multiple times")
        if "..." in out:
            a, b = out.split("...")
            outl = list(a) + ell + list(b)
        else:
            outl = list(out)
            if nell and not sum_unlisted_ellipsis:
                sizes = label_sizes(labels, shapes)
                if any(sizes[e] != 1 for e in ell):
                    raise ValueError("output has more dimensions than subscripts given in "
                                     "einstein sum, but no '...' ellipsis provided to broadcast "
                                     "the extra dimensions.")
    label_sizes(labels, shapes)
    return labels, outl


def label_sizes(labels, shapes):
    """Each label's extent: the one extent other than 1 among its axes (1 broadcasts)."""
    sizes = {}
    for i, (ls, shp) in enumerate(zip(labels, shapes)):
        own = {}
        for c, d in zip(ls, shp):
            if c in own and own[c] != d:
                raise ValueError(f"dimensions in single operand for collapsing index "
                                 f"'{_name(c)}' don't match ({own[c]} != {d})")
            own[c] = d
            if sizes.get(c, 1) == 1:
                sizes[c] = d
            elif d not in (1, sizes[c]):
                shown = " ".join(f"{tuple(s)}" for s in shapes)
                raise ValueError(f"operands could not be broadcast together: subscript "
                                 f"'{_name(c)}' has extent {sizes[c]} and {d} (operand {i}); "
                                 f"shapes {shown}")
    return sizes


def _name(c):
    return "..." if isinstance(c, tuple) else c


# --- contraction -------------------------------------------------------------------------------
def diagonal(x, p, q):
    """The main diagonal of axes p and q (rectangular too: min of the extents), as the last
    axis after the others: one gather of n elements, stride cols + 1, from the flattened pair."""
    order = [i for i in range(len(_shape(x))) if i not in (p, q)] + [p, q]
    rows, cols = _shape(x)[p], _shape(x)[q]
    y = ops.transpose(x, tuple(order))
    lead = _shape(y)[:-2]
    y = ops.reshape(y, lead + (rows * cols,))
    n = builtins.min(rows, cols)
    return ops.gather(y, np.arange(n, dtype=np.int64) * (cols + 1), axis=len(lead))


def _diagonal(x, ls):
    """The diagonal of the first repeated label of `ls`."""
    for c in ls:
        if ls.count(c) > 1:
            p = ls.index(c)
            q = ls.index(c, p + 1)
            return diagonal(x, p, q), [a for i, a in enumerate(ls) if i not in (p, q)] + [c]
    return x, ls


def _prepare(x, ls, sizes):
    """Diagonals of repeated labels, then axes of extent 1 under a larger label squeezed."""
    while len(set(ls)) != len(ls):
        x, ls = _diagonal(x, ls)
    shp = _shape(x)
    drop = [i for i, c in enumerate(ls) if shp[i] == 1 and sizes[c] != 1]
    if drop:
        ls = [c for i, c in enumerate(ls) if i not in drop]
        x = ops.reshape(x, tuple(d for i, d in enumerate(shp) if i not in drop))
    return x, ls


def _sum_out(x, ls, keep):
    axes = [i for i, c in enumerate(ls) if c not in keep]
    if not axes:
        return x, ls
    return ops.reduce_sum(x, tuple(axes)), [c for c in ls if c in keep]


def pair(x, xl, y, yl, keep):
    """Contract two operands over their shared labels not in `keep`; shared labels in `keep`
    are batch axes. One dot_general with GEMM's layout: x (batch, free, contracted), y (batch,
    contracted, free); the result's labels are batch + x free + y free."""
    x, xl = _sum_out(x, xl, set(yl) | keep)
    y, yl = _sum_out(y, yl, set(xl) | keep)
    shared = [c for c in xl if c in yl]
    batch = [c for c in shared if c in keep]
    con = [c for c in shared if c not in keep]
    xf = [c for c in xl if c not in shared]
    yf = [c for c in yl if c not in shared]
    x = ops.transpose(x, tuple(xl.index(c) for c in batch + xf + con))
    y = ops.transpose(y, tuple(yl.index(c) for c in batch + con + yf))
    nb, nxf, nc = len(batch), len(xf), len(con)
    r = ops.dot_general(x, y, contract=(tuple(range(nb + nxf, nb + nxf + nc)),
                                        tuple(range(nb, nb + nc))),
                        batch=(tuple(range(nb)), tuple(range(nb))))
    return r, batch + xf + yf


_PATHS: dict = {}  # (spec, operand shapes, optimize) -> the validated steps of np.einsum_path


def path_for(labels, shapes, sizes, optimize, dtype="f64"):
    """The contraction order np.einsum_path picks on zero-stride dummies of these shapes."""
    n = len(labels)
    if n < 2:
        return [tuple(range(n))] if n else []
    if isinstance(optimize, (list, tuple)):
        if not optimize or optimize[0] != "einsum_path":
            raise TypeError("einsum: an explicit optimize path is a list that starts with "
                            "'einsum_path', e.g. ['einsum_path', (0, 1), (0, 1)]")
    elif optimize is False or optimize is True or optimize == "greedy":
        optimize = "greedy"
    elif optimize != "optimal":
        raise TypeError(f"einsum: optimize={optimize!r}: expected True, False, 'greedy', "
                        "'optimal' or a path ['einsum_path', (i, j), ...]")
    names = {}
    for ls in labels:
        for c in ls:
            names.setdefault(c, LETTERS[len(names)] if len(names) < 52 else None)
    if None in names.values():
        raise ValueError("einsum: more than 52 distinct subscripts")
    spec = ",".join("".join(names[c] for c in ls) for ls in labels)
    dims = tuple(tuple(sizes[c] for c in ls) for ls in labels)
    # np.einsum_path is a pure function of (spec, shapes, optimize) and costs tens of
    # microseconds; every dot, matmul and outer of a trace asks it. A path given as a list is
    # validated every time and not cached.
    key = (spec, dims, optimize) if type(optimize) is str else None
    hit = _PATHS.get(key) if key is not None else None
    if hit is not None:
        return list(hit)
    dummies = [np.broadcast_to(np.empty((), np.float64), d) for d in dims]
    steps = np.einsum_path(spec, *dummies, optimize=optimize)[0][1:]
    left = n
    for s in steps:
        if not s or len(set(s)) != len(s) or any(not 0 <= int(i) < left for i in s):
            raise ValueError(f"einsum: invalid contraction {s!r} in the optimize path")
        left -= len(s) - 1
    if left != 1:
        raise ValueError("einsum: the optimize path does not contract every operand")
    steps = [tuple(int(i) for i in s) for s in steps]
    if key is not None:
        if len(_PATHS) >= 1024:
            _PATHS.clear()
        _PATHS[key] = tuple(steps)
    return steps


def contract(xs, labels, out, optimize="greedy"):
    """The einsum of operands `xs` (IR values) with `labels` each, result labels `out`."""
    xs, labels = list(xs), [list(ls) for ls in labels]
    shapes = [_shape(x) for x in xs]
    sizes = label_sizes(labels, shapes)
    pre = [_prepare(x, ls, sizes) for x, ls in zip(xs, labels)]
    xs, labels = [p[0] for p in pre], [p[1] for p in pre]
    # labels of one operand that neither the output nor another operand needs: summed first
    for i in range(len(xs)):
        others = set(out).union(*[set(ls) for j, ls in enumerate(labels) if j != i])
        xs[i], labels[i] = _sum_out(xs[i], labels[i], others)
    steps = path_for(labels, [_shape(x) for x in xs], sizes, optimize)
    for s in steps:
        picked = [(xs[i], labels[i]) for i in s]
        for i in sorted(s, reverse=True):
            del xs[i], labels[i]
        keep = set(out).union(*[set(ls) for ls in labels])
        cur, cl = picked[0]
        for k in range(1, len(picked)):
            rest = keep.union(*[set(p[1]) for p in picked[k + 1:]])
            cur, cl = pair(cur, cl, picked[k][0], picked[k][1], rest)
        xs.append(cur)
        labels.append(cl)
    (cur,), (cl,) = xs, labels
    cur, cl = _sum_out(cur, cl, set(out))
    missing = [c for c in out if c not in cl]
    if missing:  # a label of extent 1 everywhere it appeared... never squeezed; defensive
        full = tuple(sizes[c] for c in cl) + tuple(sizes[c] for c in missing)
        cur = ops.broadcast_in_dim(cur, shape=full, dims=tuple(range(len(cl))))
        cl = cl + missing
    return ops.transpose(cur, tuple(cl.index(c) for c in out))


def einsum(spec, *xs, optimize="greedy", sum_unlisted_ellipsis=False):
    labels, out = parse(spec, [_shape(x) for x in xs], sum_unlisted_ellipsis)
    return contract(xs, labels, out, optimize)
