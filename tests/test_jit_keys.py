"""jit never replays a trace made for other values (issue 12): static arguments keyed by type
and bit pattern, float()/.item() guards on bit patterns, out-of-range negative indices, fresh
output arrays on every call of every tier, and errors that name the offending argument.
References are the same Python functions run on plain NumPy."""
from __future__ import annotations

import math

import numpy as np
import pytest

import adjit
from adjit import jit


# --- item 2: static arguments -------------------------------------------------------------------
def _by_type(x, s):
    """Depends on what `s` is, not only on `s == ...`: its type, the sign of a zero, nesting."""
    flat = s if isinstance(s, tuple) else (s,)
    tag = 0.0
    for v in flat:
        if isinstance(v, tuple):
            v = v[0]
        tag = tag * 10 + {bool: 1.0, int: 2.0, float: 3.0}.get(type(v), 4.0)
        tag += 0.5 * math.copysign(1.0, v) if not math.isnan(v) else 0.25
    return x + tag


STATICS = [1, 1.0, True, np.int64(1), np.float64(1.0), 0.0, -0.0, 0, False, float("nan"),
           (1, (2.0,)), (1, (2,)), (1.0, (2,)), (True, (-0.0,))]


@pytest.mark.filterwarnings("ignore:adjit.jit")
def test_static_args_keyed_by_type_and_bits():
    x = np.array([1.0, 2.0])
    jf = jit(_by_type, static_argnums=1)
    for s in STATICS + STATICS[::-1]:
        np.testing.assert_array_equal(jf(x, s), _by_type(x, s), err_msg=repr(s))
    # one trace per distinct (type, bits); a NaN matches itself instead of retracing every call
    assert jf.traces == len(STATICS)
    jf(x, float("nan"))
    assert jf.traces == len(STATICS)


def test_static_argnames_by_position_and_argnums_by_keyword():
    seen = []

    def f(x, s, t=1.0):
        seen.append((type(s), type(t)))
        return x * s + t

    x = np.array([1.0, -2.0])
    for jf, call in ((jit(f, static_argnames="s"), lambda jf, s: jf(x, s)),
                     (jit(f, static_argnums=1), lambda jf, s: jf(x, s=s)),
                     (jit(f, static_argnames=("s", "t")), lambda jf, s: jf(x, s, -0.0))):
        seen.clear()
        for s in (2.0, 3.0, 2.0):
            np.testing.assert_array_equal(call(jf, s), x * s + (1.0 if jf.static_argnames != (
                "s", "t") else -0.0))
        # static: the function saw the Python float itself, once per value
        assert [t for t, _ in seen] == [float, float], seen
        assert jf.traces == 2
    assert seen[-1][1] is float  # t static too, passed by position


# --- item 13: errors name the argument ------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.array(["a", "b"]), np.array([object()], dtype=object)])
def test_bad_dtype_error_names_the_argument(bad):
    def f(x, inputs):
        return x

    with pytest.raises(TypeError, match=r"argument 'inputs' \(position 1\).*dtype"):
        jit(f)(np.ones(2), bad)
    with pytest.raises(TypeError, match=r"argument 'inputs'.*dtype"):
        jit(f)(np.ones(2), inputs=[bad])
    with pytest.raises(TypeError, match=r"argument at position 2.*dtype"):
        jit(lambda *a: a[0])(np.ones(2), 1.0, bad)
    with pytest.raises(TypeError, match=r"grad: argument 'inputs' \(position 1\).*dtype"):
        adjit.grad(lambda x, inputs: np.sum(x))(np.ones(2), bad)
    with pytest.raises(TypeError, match=r"grad: argument 'inputs' \(position 0\).*dtype"):
        adjit.grad(lambda inputs: np.sum(inputs))(bad)


# --- both tiers ----------------------------------------------------------------------------------
def _in_interpreter(check):
    """Run module-level function `check` in a fresh process with ADJIT_DISABLE_JIT=1 (the
    switch is read when a graph first runs, so it cannot be flipped inside this process)."""
    import os
    import subprocess
    import sys
    here = os.path.dirname(os.path.abspath(__file__))
    code = f"import sys; sys.path.insert(0, {here!r}); import test_jit_keys as t; t.{check}()"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, ADJIT_DISABLE_JIT="1"), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


# --- item 8: fresh outputs ------------------------------------------------------------------------
W = np.arange(6.0)


def _check_distinct(outs, owners, want):
    outs = outs if isinstance(outs, tuple) else (outs,)
    want = want if isinstance(want, tuple) else (want,)
    for k, (o, w) in enumerate(zip(outs, want)):
        np.testing.assert_array_equal(o, w)
        assert isinstance(o, np.ndarray) and o.flags.writeable, k
        for a in owners + [p for j, p in enumerate(outs) if j != k]:
            assert not np.shares_memory(o, a), k


FRESH_CASES = {
    "identity": lambda x: x,
    "slice": lambda x: x[1:4],
    "reshape": lambda x: x.reshape(2, 3),
    "transpose": lambda x: x.reshape(2, 3).T,
    "broadcast": lambda x: np.broadcast_to(x[:1], (4,)),
    "closure": lambda x: W,
    "closure_view": lambda x: W[::2],
    "repeat_input": lambda x: (x, x),
    "repeat_value": lambda x: (lambda y: (y, y, y.reshape(3, 2)))(x * 2.0),
}


def check_fresh_outputs():
    for name, fn in FRESH_CASES.items():
        jf = jit(fn)
        for call in range(3):  # the first call traces; later ones replay
            x = np.arange(6.0) + call
            want = fn(x.copy())
            want = tuple(np.array(w) for w in want) if isinstance(want, tuple) else np.array(want)
            _check_distinct(jf(x), [x, W], want)
    # the transforms without jit
    x, u = np.arange(6.0), np.ones(6)
    v, pb = adjit.vjp(lambda a: a.reshape(6), x)
    _check_distinct(v, [x], x)
    _check_distinct(pb(u)[0], [x, u], u)
    v, t = adjit.jvp(lambda a: (a, a), (x,), (u,))
    _check_distinct(v + t, [x, u], (x, x, u, u))
    val, g = adjit.value_and_grad(lambda a, w: np.sum(a * w), argnums=(0, 1))(x, u)
    _check_distinct(g, [x, u], (u, x))
    _check_distinct(adjit.grad(lambda a: np.sum(a))(x), [x], u)


def test_fresh_outputs_native():
    check_fresh_outputs()


def test_fresh_outputs_interpreter():
    _in_interpreter("check_fresh_outputs")


def test_writing_an_output_changes_nothing_else():
    jf = jit(lambda x: (x, x.reshape(2, 3)))
    x = np.arange(6.0)
    a, b = jf(x)
    a[0] = 100.0
    assert x[0] == 0.0 and b[0, 0] == 0.0
    np.testing.assert_array_equal(jf(x)[0], np.arange(6.0))


# --- item 4: indices outside [-n, n) ------------------------------------------------------------
INDEXERS = {
    "getitem": lambda x, i: x[i],
    "getitem_2d": lambda x, i: x.reshape(2, 5)[np.zeros_like(i), i],
    "getitem_rows": lambda x, i: x.reshape(5, 2)[i, 1],
    "take": lambda x, i: np.take(x, i),
    "take_axis": lambda x, i: np.take(x.reshape(2, 5), i, axis=1),
    "grad": lambda x, i: adjit.grad(lambda y: np.sum(y[i] * y[i]))(x),
}


def _numpy(name, x, i):
    if name == "grad":  # d/dx sum(x[i]**2) = scatter-add of 2 x[i]
        g = np.zeros_like(x)
        np.add.at(g, i, 2 * x[i])
        return g
    return INDEXERS[name](x, i)


def check_out_of_range_indices():
    x = np.arange(10.0)
    for name, fn in INDEXERS.items():
        n = 10 if name in ("getitem", "take", "grad") else 5
        good = [np.array([0, n - 1, -1, -n])]
        bad = [np.array([0, 1, 2, k]) for k in (-n - 1, n, -2 * n, -2 * n + 1, n + 1)]
        for i in good + bad:  # record time: as NumPy
            try:
                want = _numpy(name, x, i)
            except IndexError:
                with pytest.raises(IndexError, match="out of bounds"):
                    jit(fn)(x, i)
            else:
                np.testing.assert_array_equal(jit(fn)(x, i), want)
        jf = jit(fn)
        jf(x, good[0])
        for i in bad:  # replay (native code or interpreter) of a trace made for good indices
            with pytest.raises(IndexError):
                _numpy(name, x, i)
            with pytest.raises(IndexError, match="out of range"):
                jf(x, i)
            np.testing.assert_array_equal(jf(x, good[0]), _numpy(name, x, good[0]))
        assert jf.traces == 1, name


def test_out_of_range_indices_native():
    check_out_of_range_indices()


def test_out_of_range_indices_interpreter():
    _in_interpreter("check_out_of_range_indices")


# --- item 3: guards on float() / .item() compare bit patterns ----------------------------------------
def _by_sign_bit(x):
    s = float(x[0])
    t = x[1].item()
    out = x * 2.0 if math.copysign(1.0, s) > 0 else x - 1.0
    return out + (10.0 if math.copysign(1.0, t) < 0 else 0.0)


def check_guards_compare_bits():
    import warnings
    warnings.filterwarnings("ignore", "adjit.jit")  # ten traces on purpose
    for dt in (np.float64, np.float32):
        jf = jit(_by_sign_bit)
        values = (0.0, -0.0, np.nan, -np.nan, 1.0)
        for _ in range(2):
            for v in values:
                for w in (0.0, -0.0):
                    x = np.array([v, w, 3.0], dt)
                    np.testing.assert_array_equal(jf(x), _by_sign_bit(x), err_msg=f"{v} {w}")
        assert jf.traces == 2 * len(values)  # one per bit pattern: a NaN matches itself


@pytest.mark.filterwarnings("ignore:adjit.jit")
def test_guards_compare_bits_native():
    check_guards_compare_bits()


def test_guards_compare_bits_interpreter():
    _in_interpreter("check_guards_compare_bits")
