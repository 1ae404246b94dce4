"""Products as composites: NumPy's matmul, dot, vdot, tensordot, outer, inner and einsum, each
one dot_general per pair of operands plus reshapes/transposes/reductions (einsum.py's pairwise
contraction; re-exported by `composites`)."""
from __future__ import annotations

import numpy as np

from . import einsum as ir_einsum
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


_GUFUNC = "(n?,k),(k,m?)->(n?,m?)"


def matmul(a, b):
    """NumPy's matmul: 1-D operands are promoted and squeezed, the stacked batch axes broadcast
    (an axis of extent 1 is never materialised: it leaves the product, see einsum.py)."""
    sa, sb = shape(a), shape(b)
    for i, s in enumerate((sa, sb)):
        if not s:
            raise ValueError(f"matmul: Input operand {i} does not have enough dimensions (has "
                             f"0, gufunc core with signature {_GUFUNC} requires 1)")
    kb = sb[0] if len(sb) == 1 else sb[-2]
    if sa[-1] != kb:
        raise ValueError(f"matmul: Input operand 1 has a mismatch in its core dimension 0, "
                         f"with gufunc signature {_GUFUNC} (size {kb} is different from "
                         f"{sa[-1]}; shapes {sa} and {sb})")
    if len(sa) <= 2 and len(sb) <= 2:
        return _gemm(a, b)
    ba, bb = sa[:-2], sb[:-2]
    try:
        bs = tuple(np.broadcast_shapes(ba, bb))
    except ValueError:
        raise ValueError(f"matmul: the stacked dimensions of shapes {sa} and {sb} do not "
                         f"broadcast ({ba} and {bb})") from None
    la = [("b", r) for r in reversed(range(len(ba)))] + (["i"] if len(sa) > 1 else []) + ["k"]
    lb = [("b", r) for r in reversed(range(len(bb)))] + ["k"] + (["j"] if len(sb) > 1 else [])
    out = [("b", r) for r in reversed(range(len(bs)))] + (["i"] if len(sa) > 1 else []) + \
        (["j"] if len(sb) > 1 else [])
    return ir_einsum.contract([a, b], [la, lb], out)


def _gemm(a, b):
    """a's last axis with b's first, both of 1 or 2 axes (matmul and dot agree there): the one
    dot_general that `ir_einsum.contract` records for it (free axes of a, then of b: no
    transpose, nothing summed first, no batch axis), without planning the contraction."""
    return ops.dot_general(a, b, contract=((ndim(a) - 1,), (0,)), batch=((), ()))


def _labelled(a, b, ca, cb):
    """a and b contracted over axes ca of a with cb of b (equal extents, checked by the
    caller); the result's axes are a's others then b's others, in order (tensordot's)."""
    la = [("a", i) for i in range(ndim(a))]
    lb = [("b", i) for i in range(ndim(b))]
    for i, j in zip(ca, cb):
        lb[j] = la[i]
    out = [c for i, c in enumerate(la) if i not in ca] + \
        [c for j, c in enumerate(lb) if j not in cb]
    return ir_einsum.contract([a, b], [la, lb], out)


def _not_aligned(sa, sb, i, j):
    return ValueError(f"shapes {sa} and {sb} not aligned: {sa[i]} (dim {i}) != {sb[j]} "
                      f"(dim {j})")


def dot(a, b):
    """NumPy's dot: last axis of a with the second-to-last of b (the only one if b is 1-D)."""
    sa, sb = shape(a), shape(b)
    if not sa or not sb:
        return ops.mul(*broadcast_arrays(a, b))
    kb = 0 if len(sb) == 1 else len(sb) - 2
    if sa[-1] != sb[kb]:
        raise _not_aligned(sa, sb, len(sa) - 1, kb)
    if len(sa) <= 2 and len(sb) <= 2:
        return _gemm(a, b)
    return _labelled(a, b, (len(sa) - 1,), (kb,))


def vdot(a, b):
    """NumPy's vdot (real operands): both flattened, then the dot product."""
    na, nb = count(a), count(b)
    if na != nb:
        raise ValueError(f"vdot: cannot multiply vectors of {na} and {nb} elements")
    return _labelled(ops.reshape(a, (na,)), ops.reshape(b, (nb,)), (0,), (0,))


def tensordot(a, b, axes=2):
    """NumPy's tensordot: axes=N (last N of a with first N of b), ((axes of a), (axes of b)) or
    (axis of a, axis of b)."""
    sa, sb = shape(a), shape(b)
    if isinstance(axes, (int, np.integer)) and not isinstance(axes, bool):
        n = int(axes)
        ca, cb = list(range(-n, 0)), list(range(0, n))   # NumPy's own reading, n <= 0 too
    else:
        try:
            ca, cb = axes
        except (TypeError, ValueError):
            raise ValueError(f"tensordot: axes={axes!r}: expected an int or a pair (axes of "
                             "a, axes of b)") from None
        ca = [ca] if isinstance(ca, (int, np.integer)) else list(ca)
        cb = [cb] if isinstance(cb, (int, np.integer)) else list(cb)
    if len(ca) != len(cb):
        raise ValueError(f"tensordot: shape-mismatch for sum: axes {tuple(ca)} of {sa} and "
                         f"{tuple(cb)} of {sb}")
    # an axis out of range: AxisError (NumPy's own tensordot fails with an IndexError there)
    from .composites import norm_axis  # (composites imports this module)
    ca = tuple(norm_axis(c, len(sa)) for c in ca)
    cb = tuple(norm_axis(c, len(sb)) for c in cb)
    if len(set(ca)) != len(ca) or len(set(cb)) != len(cb):
        raise ValueError(f"tensordot: repeated axis in axes={axes!r}")
    if [sa[i] for i in ca] != [sb[i] for i in cb]:
        raise ValueError(f"tensordot: shape-mismatch for sum: {sa} axes {ca} vs {sb} axes {cb}")
    return _labelled(a, b, ca, cb)


def outer(a, b):
    a = ops.reshape(a, (count(a),))
    b = ops.reshape(b, (count(b),))
    n, m = shape(a)[0], shape(b)[0]
    return ops.mul(ops.broadcast_in_dim(a, shape=(n, m), dims=(0,)),
                   ops.broadcast_in_dim(b, shape=(n, m), dims=(1,)))


def inner(a, b):
    sa, sb = shape(a), shape(b)
    if not sa or not sb:
        return ops.mul(*broadcast_arrays(a, b))
    if sa[-1] != sb[-1]:
        raise _not_aligned(sa, sb, len(sa) - 1, len(sb) - 1)
    return _labelled(a, b, (len(sa) - 1,), (len(sb) - 1,))


def einsum(spec, *xs, optimize="greedy"):
    """NumPy's einsum (see einsum.py): ellipsis, broadcasting extents of 1, repeated labels,
    any number of operands contracted pairwise in np.einsum_path's order."""
    return ir_einsum.einsum(spec, *xs, optimize=optimize)
