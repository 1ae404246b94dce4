"""torch.einsum, tensordot, outer, inner and vdot on Tensors: the values and derivatives of
adjit/ir/einsum.py's pairwise contraction, the result named like PyTorch's top grad_fn.

PyTorch (aten/native/Linear.cpp) permutes each operand, sums with `sum` (SumBackward1), takes
diagonals and permutes (PermuteBackward0) for one operand; for several it multiplies pairs
(MulBackward0) or, when a pair sums labels away, runs bmm and views the result
(ViewBackward0). The pairwise order is np.einsum_path's greedy one (PyTorch asks opt_einsum;
the order changes rounding, and the top name only when the last pair differs).
"""
from __future__ import annotations

import numpy as np

from ..ir import einsum as ir_einsum
from ..ir import ops
from .grad_fn import tag
from .tensor import Tensor, shape_error
from .tensor_ops import fresh, wrap_dim

_NAMES = {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int",
          "bool": "Bool"}


def _tensors(who, xs):
    for i, x in enumerate(xs):
        if not isinstance(x, Tensor):
            raise TypeError(f"{who}(): argument 'operands' must be tuple of Tensors, not "
                            f"{type(x).__name__}" if who == "einsum" else
                            f"{who}(): argument (position {i + 1}) must be Tensor, not "
                            f"{type(x).__name__}")
    dts = [x._n.val.dtype for x in xs]
    for d in dts[1:]:
        if d != dts[0]:
            raise shape_error(f"expected scalar type {_NAMES.get(dts[0].name, dts[0].name)} "
                              f"but found {_NAMES.get(d.name, d.name)}")
    return [x._n for x in xs]


def _result(out, name, nodes):
    return Tensor._wrap(tag(fresh(out, nodes[0]), name, nodes))


def einsum(*args):
    """torch.einsum(equation, *operands) or torch.einsum(op0, sublist0, op1, ..., [out])."""
    if args and isinstance(args[0], str):
        spec, xs = args[0], list(args[1:])
        if len(xs) == 1 and isinstance(xs[0], (list, tuple)):
            xs = list(xs[0])
    else:
        try:
            spec, xs = ir_einsum.sublists_to_string(args, "einsum")
        except ValueError as e:
            raise shape_error(f"einsum(): {e}") from None
    nodes = _tensors("einsum", xs)
    shapes = [tuple(n.type.shape) for n in nodes]
    try:
        labels, out = ir_einsum.parse(spec, shapes, sum_unlisted_ellipsis=True)
    except ValueError as e:
        raise shape_error(f"einsum(): {e}") from None
    r = ir_einsum.contract(nodes, labels, out)
    outs = set(out)
    if len(nodes) == 1:
        name = "SumBackward1" if set(labels[0]) - outs else "PermuteBackward0"
    else:
        name = "ViewBackward0" if _last_pair_sums(labels, shapes, outs) else "MulBackward0"
    return _result(r, name, nodes)


def _last_pair_sums(labels, shapes, outs):
    """Whether PyTorch's last pairwise product sums labels away: a label outside the output
    shared by the two groups of the last step, or held by a group that is one operand."""
    if len(labels) == 2:
        return bool((set(labels[0]) | set(labels[1])) - outs)
    sizes = ir_einsum.label_sizes(labels, shapes)
    groups = [{i} for i in range(len(labels))]
    steps = ir_einsum.path_for([list(dict.fromkeys(ls)) for ls in labels], shapes, sizes, "greedy")
    for s in steps[:-1]:   # the groups the last step joins
        merged = set().union(*[groups[i] for i in s])
        for i in sorted(s, reverse=True):
            del groups[i]
        groups.append(merged)
    held = [set().union(*[set(labels[i]) for i in g]) - outs for g in groups]
    crossing = set.intersection(*held) if len(held) > 1 else held[0]
    singles = set().union(*[h for g, h in zip(groups, held) if len(g) == 1])
    return bool(crossing | singles)


def tensordot(a, b, dims=2, out=None):
    if out is not None:
        raise TypeError("tensordot(): out= is not supported by adjit")
    x, y = _tensors("tensordot", [a, b])
    sa, sb = tuple(x.type.shape), tuple(y.type.shape)
    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if isinstance(dims, (int, np.integer)) and not isinstance(dims, bool):
        if dims < 0:
            raise shape_error(f"tensordot expects dims >= 0, but got dims={dims}")
        if dims > min(len(sa), len(sb)):
            raise shape_error(f"tensordot expects dims < ndim_a or ndim_b, but got dims={dims}")
        ca, cb = list(range(len(sa) - dims, len(sa))), list(range(dims))
    else:
        try:
            ca, cb = dims
        except (TypeError, ValueError):
            raise TypeError("tensordot(): argument 'dims' must be an int or a pair of lists "
                            "of ints") from None
        for pos, c in (("dims_self", ca), ("dims_other", cb)):
            if isinstance(c, (int, np.integer)):
                raise TypeError(f"tensordot(): argument '{pos}' (position 3) must be tuple of "
                                "ints, not int")
        ca, cb = list(ca), list(cb)
        if len(ca) != len(cb):
            raise shape_error("both dimension lists should have same length")
    wa, wb = [], []
    for i, j in zip(ca, cb):  # pair by pair, as PyTorch checks (its range check and words)
        wi, wj = wrap_dim(i, len(sa), scalar=False), wrap_dim(j, len(sb), scalar=False)
        if sa[wi] != sb[wj]:
            raise shape_error(f"contracted dimensions need to match, but first has size "
                              f"{sa[wi]} in dim {i} and second has size {sb[wj]} in dim {j}")
        wa.append(wi)
        wb.append(wj)
    ca, cb = wa, wb
    la = [("a", i) for i in range(len(sa))]
    lb = [("b", j) for j in range(len(sb))]
    for i, j in zip(ca, cb):
        lb[j] = la[i]
    out_l = [c for i, c in enumerate(la) if i not in ca] + \
        [c for j, c in enumerate(lb) if j not in cb]
    return _result(ir_einsum.contract([x, y], [la, lb], out_l), "ViewBackward0", [x, y])


def outer(input, vec2):
    x, y = _tensors("outer", [input, vec2])
    for what, n in (("self", x), ("vec2", y)):
        if len(n.type.shape) != 1:
            raise shape_error(f"outer: Expected 1-D argument {what}, but got "
                              f"{len(n.type.shape)}-D")
    (n,), (m,) = x.type.shape, y.type.shape
    r = ops.mul(ops.broadcast_in_dim(x, shape=(n, m), dims=(0,)),
                ops.broadcast_in_dim(y, shape=(n, m), dims=(1,)))
    return _result(r, "MulBackward0", [x, y])


def inner(input, other):
    x, y = _tensors("inner", [input, other])
    sa, sb = tuple(x.type.shape), tuple(y.type.shape)
    if not sa or not sb:
        return input * other
    if sa[-1] != sb[-1]:
        raise shape_error(f"inner() the last dimension must match on both input tensors but "
                          f"got shapes {list(sa)} and {list(sb)}")
    return tensordot(input, other, ([-1], [-1]))


def vdot(input, other):
    x, y = _tensors("vdot", [input, other])
    sa, sb = tuple(x.type.shape), tuple(y.type.shape)
    if len(sa) != 1 or len(sb) != 1:
        raise shape_error(f"1D tensors expected, but got {len(sa)}D and {len(sb)}D tensors")
    if sa != sb:
        raise shape_error(f"inconsistent tensor size, expected tensor [{sa[0]}] and src "
                          f"[{sb[0]}] to have the same number of elements, but got {sa[0]} "
                          f"and {sb[0]} elements respectively")
    r = ops.dot_general(x, y, contract=((0,), (0,)), batch=((), ()))
    return _result(r, "VdotBackward0", [x, y])


FUNCTIONS = {"einsum": einsum, "tensordot": tensordot, "outer": outer, "inner": inner,
             "vdot": vdot, "ger": outer}
