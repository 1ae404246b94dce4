"""Products as composites: NumPy's matmul, dot, tensordot, outer, inner and einsum, each
one dot_general plus reshapes/transposes/reductions (re-exported by `composites`)."""
from __future__ import annotations

import builtins

import numpy as np

from . import ops


def shape(x):
    return ops.shape(x)


def ndim(x):
    return len(ops.shape(x))


def count(x):
    n = 1
    for d in shape(x):
        n *= d
    return n


def broadcast_arrays(*xs):
    shp = np.broadcast_shapes(*[shape(x) for x in xs if not isinstance(x, (bool, int, float))])
    return [x if isinstance(x, (bool, int, float)) else ops.broadcast_to(x, shp) for x in xs]


def _dot(a, b, contract, batch=((), ())):
    return ops.dot_general(a, b, contract=(tuple(contract[0]), tuple(contract[1])),
                           batch=(tuple(batch[0]), tuple(batch[1])))


def matmul(a, b):
    """NumPy's matmul: 1-D operands are promoted and squeezed, batch dims broadcast."""
    sa, sb = shape(a), shape(b)
    if not sa or not sb:
        raise ValueError("matmul: operands must not be scalars (use *)")
    if len(sa) == 1:
        a = ops.reshape(a, (1,) + sa)
    if len(sb) == 1:
        b = ops.reshape(b, sb + (1,))
    xa, xb = shape(a), shape(b)
    if xa[-1] != xb[-2]:
        raise ValueError(f"matmul: shapes {sa} and {sb} do not match "
                         f"(contracting {xa[-1]} with {xb[-2]})")
    if len(xb) == 2:
        r = _dot(a, b, ((len(xa) - 1,), (0,)))
    else:
        bs = tuple(np.broadcast_shapes(xa[:-2], xb[:-2]))
        a = ops.broadcast_to(a, bs + xa[-2:])
        b = ops.broadcast_to(b, bs + xb[-2:])
        nb = len(bs)
        r = _dot(a, b, ((nb + 1,), (nb,)), (tuple(range(nb)), tuple(range(nb))))
    rs = shape(r)
    if len(sa) == 1:
        rs = rs[:-2] + rs[-1:]
    if len(sb) == 1:
        rs = rs[:-1]
    return ops.reshape(r, rs)


def dot(a, b):
    """NumPy's dot: last axis of a with the second-to-last of b (the only one if b is 1-D)."""
    sa, sb = shape(a), shape(b)
    if not sa or not sb:
        return ops.mul(*broadcast_arrays(a, b))
    kb = 0 if len(sb) == 1 else len(sb) - 2
    if sa[-1] != sb[kb]:
        raise ValueError(f"dot: shapes {sa} and {sb} not aligned: {sa[-1]} (dim {len(sa) - 1})"
                         f" != {sb[kb]} (dim {kb})")
    return _dot(a, b, ((len(sa) - 1,), (kb,)))


def tensordot(a, b, axes=2):
    sa, sb = shape(a), shape(b)
    if isinstance(axes, (int, np.integer)):
        ca, cb = tuple(range(len(sa) - axes, len(sa))), tuple(range(axes))
    else:
        ca, cb = axes
        ca = (ca,) if isinstance(ca, (int, np.integer)) else tuple(ca)
        cb = (cb,) if isinstance(cb, (int, np.integer)) else tuple(cb)
        ca = tuple(int(c) % len(sa) for c in ca)
        cb = tuple(int(c) % len(sb) for c in cb)
    if [sa[i] for i in ca] != [sb[i] for i in cb]:
        raise ValueError(f"tensordot: shape mismatch for sum: {sa} axes {ca} vs {sb} axes {cb}")
    return _dot(a, b, (ca, cb))


def outer(a, b):
    a = ops.reshape(a, (count(a),))
    b = ops.reshape(b, (count(b),))
    n, m = shape(a)[0], shape(b)[0]
    return ops.mul(ops.broadcast_in_dim(a, shape=(n, m), dims=(0,)),
                   ops.broadcast_in_dim(b, shape=(n, m), dims=(1,)))


def inner(a, b):
    if not shape(a) or not shape(b):
        return ops.mul(*broadcast_arrays(a, b))
    return _dot(a, b, ((ndim(a) - 1,), (ndim(b) - 1,)))


def _diagonal(x, s):
    """Take the diagonal of the first repeated letter of `s` (einsum's 'ii')."""
    for c in s:
        if s.count(c) > 1:
            p = s.index(c)
            q = s.index(c, p + 1)
            order = [i for i in range(len(s)) if i not in (p, q)] + [p, q]
            rows, cols = shape(x)[p], shape(x)[q]
            n = builtins.min(rows, cols)
            y = ops.transpose(x, tuple(order))
            lead = shape(y)[:-2]
            y = ops.reshape(y, lead + (rows * cols,))
            y = ops.gather(y, np.arange(n, dtype=np.int64) * (cols + 1), axis=len(lead))
            return y, "".join(s[i] for i in order[:-2]) + c
    return x, s


def _drop_unneeded(x, s, keep):
    while len(set(s)) != len(s):
        x, s = _diagonal(x, s)
    axes = [i for i, c in enumerate(s) if c not in keep]
    if axes:
        x = ops.reduce_sum(x, tuple(axes))
        s = "".join(c for c in s if c in keep)
    return x, s


def einsum(spec, *xs):
    """einsum over explicit letters (no ellipsis): pairwise dot_general, reductions, diagonals."""
    spec = spec.replace(" ", "")
    if "." in spec:
        raise NotImplementedError("einsum with '...' is not supported; write out the axes")
    if "->" in spec:
        ins, out = spec.split("->")
    else:
        ins = spec
        letters = ins.replace(",", "")
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    specs = ins.split(",")
    if len(specs) != len(xs):
        raise ValueError(f"einsum: {len(specs)} operand specs but {len(xs)} operands")
    for s, x in zip(specs, xs):
        if len(s) != ndim(x):
            raise ValueError(f"einsum: operand spec {s!r} does not match shape {shape(x)}")
    later = [set("".join(specs[i + 1:])) for i in range(len(specs))]
    cur, cs = _drop_unneeded(xs[0], specs[0], set(out) | later[0])
    for i in range(1, len(xs)):
        keep = set(out) | later[i]
        x, s = _drop_unneeded(xs[i], specs[i], keep | set(cs))
        shared = [c for c in cs if c in s]
        batch = [c for c in shared if c in keep]
        contract = [c for c in shared if c not in keep]
        cur = _dot(cur, x, ([cs.index(c) for c in contract], [s.index(c) for c in contract]),
                   ([cs.index(c) for c in batch], [s.index(c) for c in batch]))
        cs = "".join(batch) + "".join(c for c in cs if c not in shared) + \
            "".join(c for c in s if c not in shared)
    cur, cs = _drop_unneeded(cur, cs, set(out))
    return ops.transpose(cur, tuple(cs.index(c) for c in out))


