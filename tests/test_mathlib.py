"""Accuracy of the vectorisable math library (adjit/codegen/mathlib.py) against NumPy.

Each function is compiled into a loop over an array and compared, in ulps of the result's
dtype, with NumPy: for f64 with NumPy's own f64 function (itself within ~1 ulp of the truth),
for f32 with NumPy's f64 function rounded to f32 (nearly correctly rounded; NumPy's f32
kernels are less accurate than ours). Special values must match exactly, sign of zero
included: +-0, subnormals, +-inf, NaN, overflow/underflow edges.

Bounds (max ulp over the sampled domains; also in docs/codegen.md):
"""
from __future__ import annotations

import ctypes
import re
import zlib

import numpy as np
import pytest
from llvmlite import ir

from adjit.codegen import mathlib
from adjit.codegen.emit import I64, PTR, REG, i64
from adjit.runtime import engine

ULP = {  # function: (f64 bound, f32 bound)
    "exp": (1, 1), "log": (1, 1), "log1p": (2, 2), "expm1": (2, 1), "sin": (2, 1),
    "cos": (2, 1), "tan": (4, 1), "tanh": (3, 2), "logistic": (2, 2), "sqrt": (0, 0),
    "rsqrt": (1, 1), "pow": (4, 1),
}
__doc__ += "\n".join(f"    {k:9s} f64 {v[0]} ulp, f32 {v[1]} ulp" for k, v in ULP.items())

DOMAINS = {  # where the samples are drawn (besides [-1, 1], tiny values and the specials)
    "exp": (-745.0, 709.7), "log": (0.0, 1e300), "log1p": (-0.999, 1e6),
    "expm1": (-40.0, 709.0), "sin": (-1e4, 1e4), "cos": (-1e4, 1e4), "tan": (-1e4, 1e4),
    "tanh": (-25.0, 25.0), "logistic": (-750.0, 750.0), "sqrt": (0.0, 1e300),
    "rsqrt": (0.0, 1e300),
}
F32_CLIP = {"exp": (-103.0, 88.7), "expm1": (-40.0, 88.7), "log": (0.0, 3e38),
            "log1p": (-0.999, 3e38), "sqrt": (0.0, 3e38), "rsqrt": (0.0, 3e38)}


def _logistic(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


REF = {"exp": np.exp, "log": np.log, "log1p": np.log1p, "expm1": np.expm1, "sin": np.sin,
       "cos": np.cos, "tan": np.tan, "tanh": np.tanh, "logistic": _logistic, "sqrt": np.sqrt,
       "rsqrt": lambda x: 1.0 / np.sqrt(x), "pow": np.power}
SPECIALS = [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1e-310, -1e-310, 1e-300,
            2.2250738585072014e-308, 1.0, -1.0, 0.5, 709.78, 709.79, -745.13, -745.14, 710.0,
            -746.0, 88.72, 88.73, -103.97, -87.3, 1e4, -1e4, 1e300, -1e300, 3.0e38, -1e-45]

_KERNELS = {}


def kernel(name, dt, nargs=1, outline=False):
    """A compiled loop out[i] = name(in0[i], ...) over a runtime length (cached per test run);
    `outline`: the loop calls the module's outlined function (mathlib.outlined) instead of
    inlining it (the kernel's `.ir` is then the optimised module's text)."""
    key = (name, dt, outline)
    if key not in _KERNELS:
        m = ir.Module()
        t = REG[dt]
        f = ir.Function(m, ir.FunctionType(ir.VoidType(), [PTR] * (nargs + 1) + [I64]), "k")
        b = ir.IRBuilder(f.append_basic_block())
        n = f.args[nargs + 1]
        pre, head = b.block, b.append_basic_block()
        body, done = b.append_basic_block(), b.append_basic_block()
        b.branch(head)
        b.position_at_end(head)
        i = b.phi(I64)
        i.add_incoming(i64(0), pre)
        b.cbranch(b.icmp_signed("<", i, n), body, done)
        b.position_at_end(body)
        vals = [b.load(b.gep(p, [i], source_etype=t), typ=t) for p in f.args[:nargs]]
        if outline:
            fn, variants = mathlib.outlined(m, name, dt, nargs)
            mathlib.keep_alive(m, variants)
            val = b.call(fn, vals)
        else:
            val = mathlib.call(b, name, dt, *vals)
        b.store(val, b.gep(f.args[nargs], [i], source_etype=t))
        i.add_incoming(b.add(i, i64(1)), b.block)
        b.branch(head)
        b.position_at_end(done)
        b.ret_void()
        opt = engine.optimize(str(m), name)
        text = str(opt)
        obj = engine.emit_object(opt, name)
        lib = engine.load(obj, "k", {}, name)
        fn = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * (nargs + 1), ctypes.c_int64)(
            lib.address)
        _KERNELS[key] = (lib, fn, text)
    fn = _KERNELS[key][1]

    def run(*xs):
        xs = [np.ascontiguousarray(x) for x in xs]
        out = np.empty_like(xs[0])
        fn(*[x.ctypes.data for x in xs], out.ctypes.data, out.size)
        return out
    run.ir = _KERNELS[key][2]
    return run


def ulp_error(got, want, npdt):
    """|got - want| in ulps of `want` rounded to npdt; 0 where both are equal or both NaN."""
    w = want.astype(npdt)
    same = (got == w) | (np.isnan(got) & np.isnan(w))
    with np.errstate(all="ignore"):
        d = np.abs(got.astype(np.float64) - w.astype(np.float64)) / \
            np.spacing(np.abs(w)).astype(np.float64)
    d[same] = 0.0
    d[~same & ~np.isfinite(d)] = np.inf
    return d


def _samples(name, npdt, rng):
    lo, hi = DOMAINS[name]
    if npdt == np.float32:
        lo, hi = F32_CLIP.get(name, (lo, hi))
    parts = [rng.uniform(-1, 1, 20000), rng.uniform(-1e-6, 1e-6, 2000)]
    if lo >= 0 and hi > 1e10:  # log-uniform over the whole positive range
        parts.append(np.exp(rng.uniform(np.log(1e-300 if npdt == np.float64 else 1e-37),
                                        np.log(hi), 50000)))
    else:
        parts.append(rng.uniform(lo, hi, 50000))
    x = np.concatenate(parts)
    if lo >= 0:
        x = np.abs(x)
    return np.clip(x, lo if lo < 0 else 0.0, hi).astype(npdt)


@pytest.mark.parametrize("dt", ["f64", "f32"])
@pytest.mark.parametrize("name", [n for n in mathlib.UNARY])
def test_unary_accuracy(name, dt):
    npdt = np.float64 if dt == "f64" else np.float32
    x = _samples(name, npdt, np.random.default_rng(zlib.crc32(name.encode())))
    got = kernel(name, dt)(x)
    with np.errstate(all="ignore"):
        want = REF[name](x.astype(np.float64))
    err = ulp_error(got, want, npdt)
    bound = ULP[name][0 if dt == "f64" else 1]
    worst = int(np.argmax(err))
    assert err.max() <= bound, f"{name}({x[worst]!r}) = {got[worst]!r}, want {want[worst]!r}: " \
                               f"{err.max()} ulp > {bound}"


@pytest.mark.parametrize("dt", ["f64", "f32"])
@pytest.mark.parametrize("name", [n for n in mathlib.UNARY])
def test_unary_special_values(name, dt):
    npdt = np.float64 if dt == "f64" else np.float32
    with np.errstate(all="ignore"):
        x = np.array(SPECIALS, npdt)
        if name in ("sin", "cos", "tan"):  # see test_trig_beyond_the_reduction_range
            x = x[~(np.abs(x) > 2.0 ** 43) | ~np.isfinite(x)]
        got = kernel(name, dt)(x)
        want = REF[name](x.astype(np.float64)).astype(npdt)
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan, err_msg=f"NaN pattern of {name}")
    exact = ~nan & (np.isinf(want) | (want == 0))
    np.testing.assert_array_equal(got[exact], want[exact], err_msg=f"{name} at {x[exact]}")
    np.testing.assert_array_equal(np.signbit(got[exact]), np.signbit(want[exact]),
                                  err_msg=f"sign of zero/inf for {name} at {x[exact]}")
    err = ulp_error(got[~nan], want[~nan], npdt)
    assert err.max() <= max(ULP[name][0 if dt == "f64" else 1], 1)


@pytest.mark.parametrize("dt", ["f64", "f32"])
def test_pow(dt):
    npdt = np.float64 if dt == "f64" else np.float32
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.uniform(0, 10, 30000), rng.uniform(0.5, 2, 10000),
                        -rng.integers(0, 10, 5000).astype(float)]).astype(npdt)
    y = np.concatenate([rng.uniform(-10, 10, 30000), rng.uniform(-50, 50, 10000),
                        rng.integers(-9, 9, 5000).astype(float)]).astype(npdt)
    got = kernel("pow", dt, 2)(x, y)
    with np.errstate(all="ignore"):
        want = np.power(x.astype(np.float64), y.astype(np.float64))
    err = ulp_error(got, want, npdt)
    assert err.max() <= ULP["pow"][0 if dt == "f64" else 1], (x[np.argmax(err)],
                                                              y[np.argmax(err)])
    # every pair of special values behaves as C99/NumPy pow
    sp = np.array([0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0, -3.0, np.inf, -np.inf,
                   np.nan, 1e-310], npdt)
    xs, ys = [a.ravel() for a in np.meshgrid(sp, sp)]
    got = kernel("pow", dt, 2)(xs, ys)
    with np.errstate(all="ignore"):
        want = np.power(xs.astype(np.float64), ys.astype(np.float64)).astype(npdt)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    assert (ulp_error(got[ok], want[ok], npdt) <= 1).all()
    np.testing.assert_array_equal(np.signbit(got[ok]), np.signbit(want[ok]))


@pytest.mark.parametrize("name", ["sin", "cos", "tan"])
def test_trig_beyond_the_reduction_range_is_bounded(name):
    # documented limitation: |x| >= 2^43 is not reduced accurately (no Payne-Hanek)
    x = np.array([1e15, -3e20, 1e300, 1.7e308])
    got = kernel(name, "f64")(x)
    assert np.isfinite(got).all()
    if name != "tan":
        assert (np.abs(got) <= 1).all()


def test_pi_over_2_pieces_sum_to_pi_over_2():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.prec = 200
    total = sum(mpmath.mpf(p) for p in mathlib.PIO2)
    assert abs(total - mpmath.pi / 2) < mpmath.mpf(2) ** -150
    assert abs(mpmath.mpf(mathlib.LN2_HI) + mathlib.LN2_LO - mpmath.log(2)) < 2.0 ** -80


def _wide_samples(npdt, rng, n):
    """Both signs over every magnitude, [-1, 1], the special values; an odd count, so that
    vectorised loops also run their scalar remainder."""
    big = 300 if npdt == np.float64 else 37
    mag = np.exp(rng.uniform(-big * np.log(10), big * np.log(10), n))
    x = np.concatenate([mag * rng.choice([-1.0, 1.0], n), rng.uniform(-1, 1, n),
                        rng.uniform(-30, 30, n), SPECIALS])
    with np.errstate(all="ignore"):
        return x.astype(npdt)


@pytest.mark.parametrize("dt", ["f64", "f32"])
@pytest.mark.parametrize("name", sorted(mathlib.OUTLINABLE))
def test_outlined_function_is_bitwise_the_inlined_code(name, dt):
    """A graph that uses a math function often calls one outlined copy (and its vector
    variants) instead of inlining the polynomial at every use (compile time, issue 18 item
    5): the results must be the same bits, vector lanes and scalar remainder alike."""
    npdt = np.float64 if dt == "f64" else np.float32
    nargs = 2 if name in ("pow", "atan2", "hypot") else 1
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    xs = [_wide_samples(npdt, rng, 20001) for _ in range(nargs)]
    if nargs == 2:
        xs[1] = rng.permutation(xs[1])
    inlined = kernel(name, dt, nargs)(*xs)
    out = kernel(name, dt, nargs, outline=True)
    got = out(*xs)
    # the loop still vectorises: the vectoriser called a vector variant
    assert re.search(rf"call <\d+ x \w+> @\"?adjit_math_{name}_{dt}_v\d+", out.ir), \
        f"loop calling outlined {name} ({dt}) was not vectorised"
    bits = np.uint64 if dt == "f64" else np.uint32
    diff = np.flatnonzero(got.view(bits) != inlined.view(bits))
    assert diff.size == 0, (f"{name}({', '.join(repr(x[diff[0]]) for x in xs)}): outlined "
                            f"{got[diff[0]]!r}, inlined {inlined[diff[0]]!r}")
    # and still the function itself (not only self-consistent): NumPy's, as the inlined code
    if name in REF:
        with np.errstate(all="ignore"):
            want = REF[name](*[x.astype(np.float64) for x in xs])
        ok = np.isfinite(want) & (np.abs(xs[0]) < 1e4)
        with np.errstate(all="ignore"):
            assert ulp_error(got[ok], want[ok], npdt).max() <= max(ULP[name]) + 1
