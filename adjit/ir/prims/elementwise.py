"""Elementwise primitives. Each is one registration: its rules and its plain data (lowering,
cost, NumPy and PyTorch names, grad_fn), from which codegen, batching and both fronts generate
their tables. Derivatives are written with ops, so they are IR themselves and can be
differentiated again."""
from __future__ import annotations

import math

import numpy as np

from .. import ops as o
from ..core import Primitive, register
from ..types import DTYPES, AType
from ._helpers import ALL, FLOATS, NUMERIC, binary, sample_array, unary


def _npfn(f):
    # keep the operand's dtype (NumPy would promote an int32 array op a python int to int64 etc.)
    def impl(*args, **_):
        out = f(*args)
        dt, want = out.dtype, args[0].dtype
        # (NumPy's builtin dtypes are singletons: the identity test settles the common case)
        return out if dt is want or dt == want else out.astype(want, copy=False)
    impl.ufunc = f  # the interpreter tier may write the result into a dead operand (`out=`)
    return impl


def _math(fn, cost, torch_saves="inputs", grad_fn=None, numpy=None, torch=None):
    """The record of a float math function lowered by codegen's math library, with the same
    name in NumPy and PyTorch unless told."""
    return dict(lowering=("math", fn), cost=cost, numpy=(fn,) if numpy is None else numpy,
                torch=(fn,) if torch is None else torch,
                grad_fn=grad_fn or f"{(torch or (fn,))[0].capitalize()}Backward0",
                torch_saves=torch_saves)


# --- binary arithmetic -------------------------------------------------------------------
def _lit(v):
    """Is this operand of a rule a literal (an equation's Python number, `Lit.value`)? A
    literal has no derivative: every caller drops its cotangent, so a rule returns None for it
    rather than computing it (`2.0 * x`'s rule computes no `ct * x`)."""
    t = type(v)
    return t is float or t is int or t is bool


binary("add", _npfn(np.add), lambda ct, x, y, out: [ct, ct], dtypes=NUMERIC, saves=False,
       lowering=("instr", "fadd", "add"), numpy=("add",))
binary("sub", _npfn(np.subtract),
       lambda ct, x, y, out: [ct, None if _lit(y) else o.neg(ct)], dtypes=NUMERIC,
       saves=False, lowering=("instr", "fsub", "sub"), numpy=("subtract",))
binary("mul", _npfn(np.multiply),
       lambda ct, x, y, out: [None if _lit(x) else o.mul(ct, y),
                              None if _lit(y) else o.mul(ct, x)],
       dtypes=NUMERIC, lowering=("instr", "fmul", "mul"), numpy=("multiply",))
binary("div", _npfn(np.divide),
       lambda ct, x, y, out: [None if _lit(x) else o.div(ct, y),
                              None if _lit(y) else o.neg(o.div(o.mul(ct, out), y))],
       domain=("any", "nonzero"), lowering=("instr", "fdiv", "sdiv"), cost=4, numpy=("divide",))


def _pow_vjp(ct, x, y, out):
    # d/dx x**y = y * x**(y-1), 0 where y == 0 (x**0 is constant: PyTorch, HIPS autograd, JAX
    # for an integer exponent); d/dy = log(x) * x**y, taken as 0 where x == 0 (as JAX does)
    if isinstance(x, (int, float)):  # a literal base: only the exponent has a derivative
        return [None, o.mul(ct, o.mul(out, math.log(x) if x > 0 else float("nan")))
                if x != 0 else o.zeros(o.shape(ct), o.dtype(ct))]
    if isinstance(y, (int, float)):
        if y == 0:
            return [o.zeros(o.shape(ct), o.dtype(ct)), None]
        return [o.mul(ct, o.mul(y, o.pow(x, float(y) - 1.0))), None]
    cx = o.mul(ct, o.mul(y, o.pow(x, o.sub(y, 1.0))))
    cx = o.select(o.eq(y, 0.0), o.zeros(o.shape(ct), o.dtype(ct)), cx)
    safe = o.select(o.eq(x, 0.0), o.full(o.shape(x), 1.0, o.dtype(x)), x)
    cy = o.mul(ct, o.mul(o.log(safe), out))
    return [cx, cy]


# NumPy's float power squares (0.5: sqrt, -1: 1/x, 0: 1, 1: x) where its inner loop reads the
# exponent with stride 0, and calls pow otherwise, so its bits at -0.0 and -inf (and by an ulp
# elsewhere) depend on the exponent's memory layout and, for one broadcast along some axes only,
# on NumPy's buffer size. adjit's rule, the same in every tier (codegen `_pow`): the fast paths
# apply where the exponent is one value for the whole result (a literal, a single element, or
# a broadcast of one: `uniform_exponent`), pow everywhere else.
def _pow_impl(x, y, **_):
    if type(y) is np.ndarray and y.ndim:
        if y.size <= 1 or not any(s for s, n in zip(y.strides, y.shape) if n != 1):
            y = y.reshape(-1)[:1].reshape(())  # one value: NumPy's stride-0 loop
        elif 0 in y.strides:
            y = np.ascontiguousarray(y)  # broadcast along some axes: pow, whatever the sizes
    out = np.power(x, y)
    dt, want = out.dtype, x.dtype
    return out if dt is want or dt == want else out.astype(want, copy=False)


_VIEWS = ("broadcast_in_dim", "reshape", "transpose", "slice")


def uniform_exponent(y, producer):
    """Is pow's exponent `y` (a Lit or a Var; `producer`: Var -> Eqn) one value for the whole
    result, so NumPy's fast paths apply (`_pow_impl`)? A single element, or a view NumPy makes
    of one (broadcast_in_dim, then reshape / transpose / slice): every stride 0."""
    while True:
        if not hasattr(y, "type"):  # a literal
            return True
        if math.prod(y.type.shape) <= 1:
            return True
        e = producer.get(y)
        if e is None or e.prim.name not in _VIEWS or not hasattr(e.inputs[0], "type"):
            return False
        y = e.inputs[0]


binary("pow", _pow_impl, _pow_vjp, domain=("positive", "any"), cost=60, numpy=("power",))


def _maxmin_vjp(cmp):
    # ties split the gradient evenly between the two operands (PyTorch and JAX both do); select,
    # not a multiply by a 0/1 mask, so a lost operand gets +0 rather than -0
    def vjp(ct, x, y, out):
        z = o.zero_of(ct)
        half = o.select(o.eq(x, y), o.mul(ct, 0.5), z)
        return [None if _lit(x) else o.select(cmp(x, y), ct, half),
                None if _lit(y) else o.select(cmp(y, x), ct, half)]
    return vjp


binary("maximum", _npfn(np.maximum), _maxmin_vjp(lambda a, b: o.gt(a, b)), dtypes=NUMERIC, smooth=False,
       numpy=("maximum",))
binary("minimum", _npfn(np.minimum), _maxmin_vjp(lambda a, b: o.lt(a, b)), dtypes=NUMERIC, smooth=False,
       numpy=("minimum",))

# --- comparisons: bool results, no derivative -----------------------------------------------
for _name, _f, _op in (("lt", np.less, "<"), ("le", np.less_equal, "<="),
                       ("gt", np.greater, ">"), ("ge", np.greater_equal, ">="),
                       ("eq", np.equal, "=="), ("ne", np.not_equal, "!=")):
    binary(_name, (lambda f: lambda x, y, **_: f(x, y))(_f), None, dtypes=ALL, out_dtype="bool",
           smooth=False, saves=False, lowering=("cmp", _op), numpy=(_f.__name__,),
           fp_warns=False)

# and / or / not are logical on bool and bitwise (two's complement) on integers, as XLA's
BITS = ("i32", "i64", "bool")
binary("and", lambda x, y, **_: np.bitwise_and(x, y), None, dtypes=BITS, saves=False,
       smooth=False, lowering=("instr", "and_", "and_"), numpy=("bitwise_and",), fp_warns=False)
binary("or", lambda x, y, **_: np.bitwise_or(x, y), None, dtypes=BITS, saves=False,
       smooth=False, lowering=("instr", "or_", "or_"), numpy=("bitwise_or",), fp_warns=False)
binary("xor", lambda x, y, **_: np.bitwise_xor(x, y), None, dtypes=BITS, saves=False,
       smooth=False, lowering=("instr", "xor", "xor"), numpy=("bitwise_xor",), fp_warns=False)

# --- unary math ---------------------------------------------------------------------------
# `math`: the function of codegen/mathlib.py that lowers it; the cost of a math function is
# what the parallel-loop heuristic charges per element (a simple operation costs 1)
unary("neg", _npfn(np.negative), lambda ct, x, out: o.neg(ct), dtypes=NUMERIC, saves=False,
      numpy=("negative",), fp_warns=False)
unary("exp", _npfn(np.exp), lambda ct, x, out: o.mul(ct, out), **_math("exp", 24, "result"))
unary("log", _npfn(np.log), lambda ct, x, out: o.div(ct, x), domain="positive",
      **_math("log", 24))
unary("log1p", _npfn(np.log1p), lambda ct, x, out: o.div(ct, o.add(x, 1.0)),
      domain="gt_minus_one", **_math("log1p", 28, grad_fn="Log1PBackward0"))
unary("expm1", _npfn(np.expm1), lambda ct, x, out: o.mul(ct, o.add(out, 1.0)),
      **_math("expm1", 28, "result"))
unary("sin", _npfn(np.sin), lambda ct, x, out: o.mul(ct, o.cos(x)), **_math("sin", 30))
unary("cos", _npfn(np.cos), lambda ct, x, out: o.neg(o.mul(ct, o.sin(x))), **_math("cos", 30))
unary("tan", _npfn(np.tan), lambda ct, x, out: o.mul(ct, o.add(o.mul(out, out), 1.0)),
      domain="small", **_math("tan", 40, "result"))
unary("tanh", _npfn(np.tanh), lambda ct, x, out: o.mul(ct, o.sub(1.0, o.mul(out, out))),
      **_math("tanh", 30, "result"))
unary("logistic", lambda x, **_: _logistic(x),
      lambda ct, x, out: o.mul(ct, o.mul(out, o.sub(1.0, out))),
      **_math("logistic", 28, "result", numpy=(), torch=("sigmoid",)))
unary("sqrt", _npfn(np.sqrt), lambda ct, x, out: o.div(o.mul(ct, 0.5), out), domain="positive",
      **_math("sqrt", 4, "result"))
unary("rsqrt", lambda x, **_: (1.0 / np.sqrt(x)).astype(x.dtype, copy=False),
      # -ct/2 * out**3 (PyTorch's formula): +inf at x = -0.0 (out = -inf), where out / x gave -inf
      lambda ct, x, out: o.mul(o.mul(ct, -0.5), o.mul(out, o.mul(out, out))), domain="positive",
      **_math("rsqrt", 5, "result", numpy=()))


def _abs_vjp(ct, x, out):
    # ct * sign(x), with sign 0 (not NaN) at x = NaN as PyTorch's sgn; 0 at x = 0 (PyTorch, HIPS
    # autograd). A multiply, not a select, so a NaN cotangent stays NaN (as in PyTorch).
    dt = o.dtype(ct)
    s = o.select(o.gt(x, 0), o.full(o.shape(ct), 1, dt),
                 o.select(o.lt(x, 0), o.full(o.shape(ct), -1, dt), o.zeros(o.shape(ct), dt)))
    return o.mul(ct, s)


unary("abs", _npfn(np.abs), _abs_vjp, dtypes=NUMERIC, domain="nonzero", smooth=False,
      numpy=("absolute",), fp_warns=False)
unary("sign", _npfn(np.sign), lambda ct, x, out: o.zeros(o.shape(ct), o.dtype(ct)), dtypes=NUMERIC,
      domain="nonzero", smooth=False, saves=False, numpy=("sign",), torch=("sign",),
      grad_fn="SignBackward0", torch_saves="nothing", fp_warns=False)

# piecewise constant: the derivative is zero everywhere it exists (at the integers, where it
# does not, adjit gives 0 as well, as JAX and PyTorch do); an integer operand is its own floor
for _name, _f in (("floor", np.floor), ("ceil", np.ceil)):
    unary(_name, _npfn(_f), lambda ct, x, out: o.zeros(o.shape(ct), o.dtype(ct)), dtypes=NUMERIC,
          smooth=False, saves=False, lowering=("intrinsic", f"llvm.{_name}", "int_identity"),
          numpy=(_name,), torch=(_name,), grad_fn=f"{_name.capitalize()}Backward0",
          torch_saves="nothing", fp_warns=False)


def _logistic(x):
    # overflow-free: exp of a non-positive number only
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


unary("not", lambda x, **_: np.invert(x), None, dtypes=BITS, smooth=False,
      saves=False, lowering=("instr", "not_", "not_"), numpy=("invert",), fp_warns=False)


# --- select (where) -----------------------------------------------------------------------
def _select_rule(p, x, y, **_):
    x = AType(p.shape, x.dtype) if x.weak else x
    y = AType(p.shape, y.dtype) if y.weak else y
    if p.dtype != "bool":
        raise TypeError(f"select: predicate must be bool, got {p.dtype}")
    if not (p.shape == x.shape == y.shape):
        raise ValueError(f"select: shapes {p.shape}, {x.shape}, {y.shape} differ")
    if x.dtype != y.dtype:
        raise TypeError(f"select: branch dtypes {x.dtype} and {y.dtype} differ")
    return AType(x.shape, x.dtype)


def _select_vjp(ct, p, x, y, out, **_):
    z = o.zero_of(ct)
    return [None, o.select(p, ct, z), o.select(p, z, ct)]


def _select_jvp(tangents, p, x, y, out, **_):
    _, tx, ty = tangents
    if tx is None and ty is None:
        return None
    z = o.zeros(o.shape(out), o.dtype(out))
    return o.select(p, z if tx is None else tx, z if ty is None else ty)


def _select_samples(dt, rng):
    p = rng.uniform(size=(3, 4)) > 0.5
    return [([p, sample_array(rng, (3, 4), dt), sample_array(rng, (3, 4), dt)], {})]


register(Primitive("select", _select_rule, lambda p, x, y, **_: np.where(p, x, y),
                   _select_vjp, _select_jvp, _select_samples, smooth=False, dtypes=ALL,
                   kind="elementwise", lowering=("instr", "select", "select"), fp_warns=False))


# --- index_wrap: an integer index into an axis of n, made non-negative or poisoned -------------
# `index_wrap i n poison` (n and poison literals): i + n where -n <= i < 0, i where 0 <= i < n,
# else poison. The fronts record it for a traced integer index (indexing.wrap_traced_index), with
# a poison outside the range the gather reading it accepts, so that an index out of range on a
# later call makes that gather raise IndexError rather than wrap a second time or read a
# neighbouring row. One equation for what is seven elementwise operations.
def _index_wrap_rule(i, n, poison):
    if i.dtype not in ("i32", "i64"):
        raise TypeError(f"index_wrap: the index must be an integer, got {i.dtype}")
    if not (n.weak and poison.weak):
        raise TypeError("index_wrap: the axis size and the poison must be literals")
    return i


_UNSIGNED = {np.dtype(np.int64): np.uint64, np.dtype(np.int32): np.uint32}


def _index_wrap_impl(i, n, poison):
    i = np.asarray(i)
    n, poison = int(n), int(poison)
    u = _UNSIGNED.get(i.dtype)
    # every index in [0, n) (labels, an arange: the common case): one test, a negative index
    # being a huge unsigned one; a fresh array either way
    if u is not None and not np.count_nonzero(i.view(u) >= n):
        return i.copy()
    ok = (i >= -n) & (i < n)
    return np.where(ok, np.where(i < 0, i + n, i), poison).astype(i.dtype, copy=False)


def _index_wrap_lower(o, i, n, poison):
    j = o.select(o.lt(i, 0), o.add(i, n), i)
    return o.select(getattr(o, "or")(o.lt(j, 0), o.ge(j, n)), poison, j)


def _index_wrap_samples(dt, rng):
    n = 5
    edges = np.array([0, 4, -1, -5, 5, -6, 17, -40, 2, -3, 1, 3], DTYPES[dt])
    big = np.iinfo(DTYPES[dt])
    i = rng.integers(-2 * n, 2 * n, (3, 4)).astype(DTYPES[dt])
    return [([edges.reshape(3, 4), n, 100], {}), ([i, n, n], {}),
            ([np.array([big.min, big.max, big.min + 3, 0], DTYPES[dt]), n, 7], {}),
            ([np.array(-2, DTYPES[dt]), n, 9], {}), ([np.zeros((0,), DTYPES[dt]), n, 9], {}),
            ([np.array([[0, 1, 2], [4, 3, 0]], DTYPES[dt]), n, n], {})]  # all in range


register(Primitive("index_wrap", _index_wrap_rule, _index_wrap_impl, None, None,
                   _index_wrap_samples, saves=False, smooth=False, dtypes=("i32", "i64"),
                   kind="elementwise", lowering=("expr", _index_wrap_lower), cost=5,
                   fp_warns=False))
