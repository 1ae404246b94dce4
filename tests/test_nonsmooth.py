"""Values and first derivatives at non-smooth and infinite points (0 for abs/sqrt/pow/norm, ties
for max/min/relu/clamp, +-inf, NaN) match the front's peer: JAX (x64) for the NumPy front,
PyTorch for the Tensor front. The conventions are tabled in docs/ir.md."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import adjit
from adjit import grad, jit

try:
    from tests.peers import require
except ImportError:
    from peers import require

inf, nan = np.inf, np.nan


def _same(label, got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (label, got.shape, want.shape)
    # NaN where the peer has NaN, the same infinities, values equal (signed zeros alike)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300, equal_nan=True,
                               err_msg=label)


# --- NumPy front vs JAX -------------------------------------------------------------------------
NP_CASES = [
    # (label, f(np_module, x), points)
    ("abs", lambda m, x: m.abs(x), [0.0, -0.0, inf, -inf, nan]),
    ("sqrt", lambda m, x: m.sqrt(x), [0.0, inf]),
    ("log", lambda m, x: m.log(x), [0.0, inf]),
    ("log1p", lambda m, x: m.log1p(x), [-1.0, inf]),
    ("exp", lambda m, x: m.exp(x), [-inf, inf]),
    ("expm1", lambda m, x: m.expm1(x), [-inf, inf]),
    ("tanh", lambda m, x: m.tanh(x), [-inf, inf, 0.0]),
    ("sin", lambda m, x: m.sin(x), [inf, nan]),
    ("sign", lambda m, x: m.sign(x), [0.0, -0.0, inf, nan]),
    ("x**0", lambda m, x: x ** 0, [0.0, inf, nan]),
    ("x**1", lambda m, x: x ** 1, [0.0, inf]),
    ("x**2", lambda m, x: x ** 2, [0.0, inf, -inf]),
    ("x**3", lambda m, x: x ** 3, [0.0]),
    ("x**0.5", lambda m, x: x ** 0.5, [0.0, inf]),
    ("x**-1", lambda m, x: x ** -1, [0.0, inf]),
    ("2**x", lambda m, x: 2.0 ** x, [-inf, inf]),
    ("1/x", lambda m, x: 1.0 / x, [0.0, -0.0, inf]),
    ("x*x", lambda m, x: x * x, [inf]),
    ("maximum(x, 0)", lambda m, x: m.maximum(x, 0.0), [0.0, inf, nan]),
    ("minimum(x, 0)", lambda m, x: m.minimum(x, 0.0), [0.0, -inf, nan]),
    ("clip(x, -1, 1)", lambda m, x: m.clip(x, -1.0, 1.0), [-1.0, 1.0, inf, -inf]),
    ("logaddexp(x, x)", lambda m, x: m.logaddexp(x, x), [-inf, inf, 0.0]),
    ("logaddexp(x, 0)", lambda m, x: m.logaddexp(x, 0.0), [-inf, 0.0]),
    ("logaddexp(x, -inf)", lambda m, x: m.logaddexp(x, -inf), [-inf, 0.0]),
]
NP_VECTOR_CASES = [
    ("max ties", lambda m, x: m.max(x), [1.0, 3.0, 3.0, 2.0]),
    ("min ties", lambda m, x: m.min(x), [1.0, 1.0, 3.0, 1.0]),
    ("max with inf", lambda m, x: m.max(x), [1.0, inf, 2.0]),
    ("max with nan", lambda m, x: m.max(x), [1.0, nan, 2.0]),
    ("amax axis ties", lambda m, x: m.max(m.reshape(x, (2, 2)), axis=1), [1.0, 1.0, 2.0, 0.0]),
    ("norm zero", lambda m, x: m.linalg.norm(x), [0.0, 0.0, 0.0]),
    ("norm inf", lambda m, x: m.linalg.norm(x), [inf, 1.0]),
    ("prod zeros", lambda m, x: m.prod(x), [0.0, 2.0, 0.0, 3.0]),
    ("prod one zero", lambda m, x: m.prod(x), [0.0, 2.0, 3.0]),
    ("sum inf", lambda m, x: m.sum(x), [inf, -inf, 1.0]),
    ("mean inf", lambda m, x: m.mean(x), [inf, 1.0]),
    ("std const", lambda m, x: m.std(x), [2.0, 2.0, 2.0]),
    ("var const", lambda m, x: m.var(x), [2.0, 2.0, 2.0]),
    ("cumsum inf", lambda m, x: m.cumsum(x), [1.0, inf, -inf]),
    ("where", lambda m, x: m.where(x > 0, m.sqrt(m.abs(x)), 0.0), [0.0, 4.0]),
]


# Where JAX's derivative is an artefact of its rule, the NumPy front follows PyTorch (and HIPS
# autograd) instead; docs/ir.md says why. label -> the same function written for PyTorch.
FOLLOW_TORCH = {
    "abs at 0.0": lambda t: t.abs(), "abs at -0.0": lambda t: t.abs(),   # JAX: 1
    "abs at nan": lambda t: t.abs(),                                      # JAX: -1
    "logaddexp(x, x) at inf": lambda t: torch_mod().logaddexp(t, t),      # JAX: 2
    "max with nan": lambda t: t.max(),                                    # JAX: NaN everywhere
}


def torch_mod():
    return require("torch")


def _np_cases():
    for label, f, pts in NP_CASES:
        for p in pts:
            yield f"{label} at {p}", f, np.array([p])
    for label, f, x in NP_VECTOR_CASES:
        yield label, f, np.array(x)


@pytest.mark.parametrize("label,f,x", list(_np_cases()), ids=lambda v: v if isinstance(v, str)
                         else "")
def test_numpy_front_matches_jax(label, f, x):
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    want = np.asarray(f(jnp, jnp.asarray(x)))
    want_g = np.asarray(jax.grad(lambda a: jnp.sum(f(jnp, a)))(jnp.asarray(x)))
    if label in FOLLOW_TORCH:
        torch = torch_mod()
        t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        FOLLOW_TORCH[label](t).sum().backward()
        want_g = t.grad.numpy()
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        got = f(np, x)  # plain NumPy: the reference values for the NumPy front
        _same(f"{label}: value (NumPy)", got, want)
        jf = jit(lambda a: f(np, a))
        _same(f"{label}: value (traced)", jf(x), want)
        _same(f"{label}: value (interpreted in auto)", jf(x), want)
        g = grad(lambda a: np.sum(f(np, a)))
        _same(f"{label}: derivative", g(x), want_g)
        jg = jit(g)
        _same(f"{label}: derivative (jit)", jg(x), want_g)
        _same(f"{label}: derivative (jit, interpreted in auto)", jg(x), want_g)
        v, d = jit(lambda a: (f(np, a), g(a)), compile="eager")(x)  # one compile: both
        _same(f"{label}: value (native)", v, want)
        _same(f"{label}: derivative (jit, native)", d, want_g)


# --- Tensor front vs PyTorch --------------------------------------------------------------------
T_CASES = [
    ("abs", lambda m, t: t.abs(), [0.0, -0.0, inf, -inf, nan]),
    ("sqrt", lambda m, t: t.sqrt(), [0.0, inf]),
    ("rsqrt", lambda m, t: t.rsqrt(), [0.0, inf]),
    ("log", lambda m, t: t.log(), [0.0, inf]),
    ("exp", lambda m, t: t.exp(), [-inf, inf]),
    ("tanh", lambda m, t: t.tanh(), [-inf, inf]),
    ("sigmoid", lambda m, t: t.sigmoid(), [-inf, inf, 0.0]),
    ("sign", lambda m, t: t.sign(), [0.0, inf]),
    ("relu", lambda m, t: t.relu(), [0.0, -0.0, inf, -inf, nan]),
    ("torch.relu", lambda m, t: m.relu(t), [0.0, nan]),
    ("clamp", lambda m, t: t.clamp(-1.0, 1.0), [-1.0, 1.0, inf, nan]),
    ("clamp min", lambda m, t: t.clamp(min=0.0), [0.0, nan]),
    ("clamp max", lambda m, t: t.clamp(max=0.0), [0.0, nan]),
    ("clamp tensor min", lambda m, t: t.clamp(min=m.zeros((), dtype=m.float64)), [0.0, nan]),
    ("t**0", lambda m, t: t ** 0, [0.0, inf]),
    ("t**0.0", lambda m, t: t ** 0.0, [0.0]),
    ("t**1", lambda m, t: t ** 1, [0.0]),
    ("t**2", lambda m, t: t ** 2, [0.0, inf]),
    ("t**0.5", lambda m, t: t ** 0.5, [0.0]),
    ("t**-1", lambda m, t: t ** -1, [0.0]),
    ("pow(t, 0)", lambda m, t: t.pow(0), [0.0]),
    ("1/t", lambda m, t: 1.0 / t, [0.0, inf]),
]
T_VECTOR_CASES = [
    ("norm zero", lambda m, t: t.norm(), [0.0, 0.0, 0.0]),
    ("norm zero rows", lambda m, t: t.reshape(2, 2).norm(dim=1), [0.0, 0.0, 3.0, 4.0]),
    ("norm p=3 zero", lambda m, t: t.norm(p=3), [0.0, 0.0]),
    ("norm p=1 zero", lambda m, t: t.norm(p=1), [0.0, 0.0]),
    ("max ties", lambda m, t: t.max(), [1.0, 3.0, 3.0]),
    ("min ties", lambda m, t: t.min(), [1.0, 1.0, 3.0]),
    ("amax dim ties", lambda m, t: t.reshape(2, 2).max(dim=1).values, [1.0, 1.0, 2.0, 0.0]),
    ("softmax -inf", lambda m, t: t.softmax(0), [-inf, 0.0, 1.0]),
    ("log_softmax -inf", lambda m, t: t.log_softmax(0)[1:], [-inf, 0.0, 1.0]),
    ("prod zeros", lambda m, t: t.prod(), [0.0, 2.0, 0.0]),
    ("prod one zero", lambda m, t: t.prod(), [0.0, 2.0, 3.0]),
    ("std const", lambda m, t: t.std(), [2.0, 2.0, 2.0]),
    ("sum inf", lambda m, t: t.sum(), [inf, 1.0]),
]


def _t_cases():
    for label, f, pts in T_CASES:
        for p in pts:
            yield f"{label} at {p}", f, [p]
    for label, f, x in T_VECTOR_CASES:
        yield label, f, x


@pytest.mark.parametrize("label,f,x", list(_t_cases()), ids=lambda v: v if isinstance(v, str)
                         else "")
def test_tensor_front_matches_torch(label, f, x):
    torch = require("torch")

    def run(mod):
        t = mod.tensor(x, dtype=mod.float64, requires_grad=True)
        out = f(mod, t)
        out.sum().backward()
        return out.detach().numpy(), t.grad.numpy()
    want, want_g = run(torch)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        got, got_g = run(adjit)
    _same(f"{label}: value", got, want)
    _same(f"{label}: derivative", got_g, want_g)


TIER_CASES = [(label, f) for label, f, pts in T_CASES if "relu" in label or "clamp" in label]


@pytest.mark.parametrize("label,f", TIER_CASES, ids=[c[0] for c in TIER_CASES])
def test_tensor_front_relu_clamp_in_jit_match_torch(label, f):
    # NaN, zeros and bounds through adjit.jit (traced, interpreted, native code) and
    # adjit.func.grad under jit: the values and derivatives torch.func gives
    torch = require("torch")
    x = [nan, -1.0, -0.0, 0.0, 1.0, 2.0, inf]
    want = f(torch, torch.tensor(x, dtype=torch.float64)).numpy()
    want_g = torch.func.grad(lambda t: f(torch, t).sum())(
        torch.tensor(x, dtype=torch.float64)).numpy()
    t = adjit.tensor(x, dtype=adjit.float64)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        jf = jit(lambda a: f(adjit, a))
        jg = jit(adjit.func.grad(lambda a: f(adjit, a).sum()))
        for how, fn, want_ in (("value", jf, want), ("derivative", jg, want_g)):
            _same(f"{label}: {how} (traced)", fn(t).numpy(), want_)
            _same(f"{label}: {how} (interpreted in auto)", fn(t).numpy(), want_)
        v, d = jit(adjit.func.grad_and_value(lambda a: f(adjit, a).sum(), has_aux=False),
                   compile="eager")(t)
        _same(f"{label}: derivative (native)", v.numpy(), want_g)
        _same(f"{label}: value (native)", jit(lambda a: f(adjit, a), compile="eager")(t).numpy(),
              want)


@pytest.mark.parametrize("name", ["neg", "sin", "exp(-x)", "1/x", "x*x", "tanh"])
def test_jacrev_zero_signs_match_torch(name):
    # the off-diagonal zeros of these Jacobians are -0.0 where the partial is negative (printed
    # "-0.0000"): torch.func.jacrev's bits, and JAX's for the NumPy front (docs/ir.md)
    torch = require("torch")
    fs = {"neg": lambda m, t: -t, "sin": lambda m, t: m.sin(t), "exp(-x)": lambda m, t: m.exp(-t),
          "1/x": lambda m, t: 1.0 / t, "x*x": lambda m, t: t * t, "tanh": lambda m, t: m.tanh(t)}
    f = fs[name]
    x = np.array([0.5, -1.0, 2.0, 3.0])
    want = torch.func.jacrev(lambda t: f(torch, t))(torch.tensor(x)).numpy()
    got = adjit.func.jacrev(lambda t: f(adjit, t))(adjit.tensor(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    want = np.asarray(jax.jacrev(lambda a: f(jnp, a))(jnp.asarray(x)))
    got = adjit.jacrev(lambda a: f(np, a))(x)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


CLIP_X = np.array([-0.0, 0.0, -0.0, 1.0, -1.0, 2.0, nan, 0.5])
CLIP_BOUNDS = [(0, 1), (0.0, -0.0), (-0.0, 0.0), (0.0, 0.0), (-0.0, -0.0), (nan, 1.0),
               (0.0, nan), (None, -0.0), (0.0, None), (-1, 1)]


def _clip_cases(dt):
    # NumPy's own rule at a tie depends on the bounds' kind: both broadcast (scalars, a 0-d or
    # a size-1 bound against a longer x) keep x, so np.clip(-0.0, 0, 1) is -0.0; array bounds
    # or one bound None take the bound (minimum(maximum(x, lo), hi))
    for lo, hi in CLIP_BOUNDS:
        yield lo, hi
        yield tuple(None if b is None else np.full(CLIP_X.size, b, dt) for b in (lo, hi))
        yield (None if lo is None else np.full(1, lo, dt)), hi
        yield (None if lo is None else dt(lo)), (None if hi is None else np.full(1, hi, dt))


@pytest.mark.parametrize("compile", ["auto", "eager"])
@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_clip_signed_zeros_and_nan_as_numpy(dt, compile):
    # np.clip(-0.0, 0, 1) is -0.0 in NumPy; adjit gave +0.0 (maximum(x, lo) takes lo at a tie)
    x = CLIP_X.astype(dt)
    for lo, hi in _clip_cases(dt):
        want = np.clip(x, lo, hi)
        f = jit(lambda a, lo, hi: np.clip(a, lo, hi), compile=compile)
        g = jit(lambda a: np.clip(a, lo, hi), compile=compile)  # bounds as literals
        for k in range(3):  # the trace, then the interpreter or native code
            for got in (f(x, lo, hi), g(x)):
                label = f"clip({lo}, {hi}) {dt.__name__} call {k + 1}"
                assert got.dtype == want.dtype, label
                np.testing.assert_array_equal(got, want, err_msg=label)
                np.testing.assert_array_equal(np.signbit(got), np.signbit(want), err_msg=label)
    # a scalar x (0-d), as in the issue
    s = jit(lambda a: np.clip(a, 0, 1))(np.float64(-0.0))
    assert np.signbit(s) and np.signbit(np.clip(np.float64(-0.0), 0, 1))
