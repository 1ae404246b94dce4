"""A custom `adjit.autograd.Function` applied to traced Tensors (inside `adjit.jit`, `adjit.grad`,
...): a `custom_vjp` call whose rule is the Function's backward, so it compiles natively.

A Function with several Tensor outputs is one custom_vjp call whose single result is the
outputs raveled and concatenated (they share one floating dtype): the results are slices of it
reshaped, and the backward receives the concatenated cotangent split the same way."""
from __future__ import annotations

from ..tracer.tensor import Tensor
from ..transforms.custom import custom_vjp
from .function import FunctionCtx, _uses_setup_context


def _forward(cls, args):
    ctx = FunctionCtx()
    ctx.materialize_grads = True
    ctx.needs_input_grad = tuple(isinstance(a, Tensor) for a in args)
    if _uses_setup_context(cls):
        out = cls.forward(*args)
        cls.setup_context(ctx, args, out)
    else:
        out = cls.forward(ctx, *args)
    return ctx, out


def _pack(cls, out, box):
    """Several outputs -> one flat Tensor (their layout kept in box["layout"])."""
    if not isinstance(out, tuple):
        box["layout"] = None
        return out
    from ..tracer.factory import cat
    dts = {o.dtype for o in out if isinstance(o, Tensor)}
    if not all(isinstance(o, Tensor) for o in out) or len(dts) != 1 or \
            not next(iter(dts)).is_floating_point:
        got = ", ".join(str(o.dtype) if isinstance(o, Tensor) else type(o).__name__
                        for o in out)
        raise NotImplementedError(
            f"{cls.__name__}.apply under a transform: the outputs of a Function with several "
            f"outputs must be Tensors of one floating dtype inside adjit.jit/grad (got {got}); "
            "on the eager tape any outputs work")
    box["layout"] = [tuple(o.shape) for o in out]
    return cat([o.reshape(-1) for o in out])


def _unpack(flat, layout):
    outs, off = [], 0
    for shape in layout:
        n = 1
        for d in shape:
            n *= d
        outs.append(flat[off:off + n].reshape(shape))
        off += n
    return tuple(outs)


def apply_traced(cls, args):
    static = tuple(i for i, a in enumerate(args) if not isinstance(a, Tensor))
    tpos = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
    box = {}

    def full_args(dyn, stat):
        it, st = iter(dyn), iter(stat)
        return tuple(next(st) if i in static else next(it) for i in range(len(args)))

    def fun(*a):
        return _pack(cls, _forward(cls, a)[1], box)

    def fwd(*a):
        ctx, out = _forward(cls, a)
        out = _pack(cls, out, box)
        saved = tuple(getattr(ctx, "to_save", ()))
        tensor_attrs = {k: v for k, v in vars(ctx).items()
                        if isinstance(v, Tensor) and k != "to_save"}
        box["ctx"] = ctx
        box["attrs"] = list(tensor_attrs)
        box["saved_none"] = [t is None for t in saved]
        return out, (tuple(t for t in saved if t is not None), tuple(tensor_attrs.values()))

    def bwd(*rest):
        res, g = rest[len(static):]
        saved, attrs = res
        old = box["ctx"]
        ctx = FunctionCtx()
        ctx.__dict__.update({k: v for k, v in vars(old).items() if not isinstance(v, Tensor)
                             and k not in ("to_save",)})
        for k, v in zip(box["attrs"], attrs):
            setattr(ctx, k, v)
        it = iter(saved)
        ctx.to_save = tuple(None if none else next(it) for none in box["saved_none"])
        layout = box["layout"]
        grads = cls.backward(ctx, *(_unpack(g, layout) if layout is not None else (g,)))
        if not isinstance(grads, tuple):
            grads = (grads,)
        if len(grads) != len(args):
            raise RuntimeError(f"function {cls.__name__}Backward returned an incorrect number "
                               f"of gradients (expected {len(args)}, got {len(grads)})")
        return tuple(grads[i] for i in tpos)

    # the static (non-Tensor) arguments go first, as custom_vjp's nondiff_argnums want
    order = list(static) + tpos
    reordered = tuple(args[i] for i in order)
    ns = len(static)

    def fun_r(*a):
        return fun(*full_args(a[ns:], a[:ns]))

    def fwd_r(*a):
        return fwd(*full_args(a[ns:], a[:ns]))

    f = custom_vjp(fun_r, nondiff_argnums=tuple(range(ns)))
    f.__name__ = cls.__name__
    f.defvjp(fwd_r, bwd)
    out = f(*reordered)
    return out if box.get("layout") is None else _unpack(out, box["layout"])
