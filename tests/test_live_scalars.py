"""jit keys the Python scalars a function reads from its module globals and closure cells by
value (floats by bit pattern): a changed `lr = 0.1` traces again instead of replaying the trace
that folded the old value (a silent wrong answer before). Each test compares the jitted
function with the same function run by NumPy after the scalar changes; gradients against
central differences."""
from __future__ import annotations

import numpy as np

import adjit
from peers import central_diff as _central

w0 = np.array([1.0, -2.0, 0.5])
g0 = np.array([0.3, 0.25, -4.0])


def _same(jf, f, *args):
    """Bitwise NumPy's answer (the graph of `w - lr * g` does what NumPy does)."""
    got, want = np.asarray(jf(*args)), np.asarray(f(*args))
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)


lr = 0.2


def step(w, g):
    return w - lr * g


def test_global_float_changed_between_calls():
    global lr
    try:
        jf = adjit.jit(step)
        for v in (0.2, 0.1, 0.1, 0.2, 3.5):
            lr = v
            for _ in range(3):   # the hot path too
                _same(jf, step, w0, g0)
        # the first value is folded; the second promotes the slot to a scalar input
        assert jf.traces == 2
    finally:
        lr = 0.2


def test_closure_cell_scalar_changed_nonlocal():
    def make():
        scale = 2.0

        def f(x):
            return np.sum(x * scale) + scale

        def set_scale(v):
            nonlocal scale
            scale = v
        return f, set_scale
    f, set_scale = make()
    jf = adjit.jit(f)
    for v in (2.0, -1.5, 7, 2.0):   # an int too: its own trace, NumPy's int * float
        set_scale(v)
        for _ in range(2):
            _same(jf, f, w0)


flag = True


def branchy(x):
    if flag:
        return np.sin(x) * 2.0
    return np.cos(x) - 1.0


def test_bool_global_flips_a_branch():
    global flag
    try:
        jf = adjit.jit(branchy)
        for v in (True, False, True, False):
            flag = v
            _same(jf, branchy, w0)
            _same(jf, branchy, w0)
        assert jf.traces == 2
    finally:
        flag = True


nps = np.float32(0.5)


def uses_numpy_scalar(x):
    return x * nps + nps


def test_numpy_scalar_global():
    global nps
    try:
        jf = adjit.jit(uses_numpy_scalar)
        for v in (np.float32(0.5), np.float32(-3.0), np.float64(0.25), np.int64(3)):
            nps = v
            _same(jf, uses_numpy_scalar, w0)
            _same(jf, uses_numpy_scalar, w0.astype(np.float32))
    finally:
        nps = np.float32(0.5)


z = 0.0


def signed_zero(x):
    return 1.0 / (x * 0.0 + z)   # 1/0.0 = inf, 1/-0.0 = -inf


def test_zero_and_negative_zero_are_apart():
    global z
    try:
        jf = adjit.jit(signed_zero)
        x = np.array([1.0, 2.0])
        with np.errstate(divide="ignore"):
            for v in (0.0, -0.0, 0.0, -0.0):
                z = v
                _same(jf, signed_zero, x)
        assert jf.traces == 2
    finally:
        z = 0.0


nan = float("nan")


def uses_nan(x):
    return np.where(x > 0, x, nan)


def test_nan_global_stays_cached():
    jf = adjit.jit(uses_nan)
    for _ in range(5):
        np.testing.assert_array_equal(jf(w0), uses_nan(w0))
    assert jf.traces == 1 and jf.retraces == 0


c = 1.5


def loss(w):
    return np.sum(np.sin(w) * c + c * c * w * w)


def test_jit_grad_sees_the_new_scalar():
    global c
    try:
        jg = adjit.jit(adjit.grad(loss))
        for v in (1.5, -0.75, 1.5, 4.0):
            c = v
            for _ in range(2):
                np.testing.assert_allclose(jg(w0), _central(loss, w0), rtol=1e-7, atol=1e-8)
                np.testing.assert_allclose(jg(w0), np.cos(w0) * v + 2 * v * v * w0,
                                           rtol=1e-13)
    finally:
        c = 1.5


def test_scalar_becomes_array_and_back():
    global lr
    try:
        jf = adjit.jit(step)
        for v in (0.2, np.array([1.0, 2.0, 3.0]), 0.5, np.array([0.0, -1.0, 1.0]), 0.2):
            lr = v
            _same(jf, step, w0, g0)
            _same(jf, step, w0, g0)
    finally:
        lr = 0.2


mode = "sum"
shift = 1 + 2j


def by_mode(x):
    r = np.sum(x) if mode == "sum" else np.max(x)
    return r * shift.real - shift.imag   # adjit has no complex arrays: parts as floats


def test_string_and_complex_globals():
    global mode, shift
    try:
        jf = adjit.jit(by_mode)
        for m, s in (("sum", 1 + 2j), ("max", 1 + 2j), ("max", 2 - 1j), ("sum", 2 - 1j),
                     ("sum", 1 + 2j)):
            mode, shift = m, s
            _same(jf, by_mode, w0)
            _same(jf, by_mode, w0)
    finally:
        mode, shift = "sum", 1 + 2j


def test_decaying_global_traces_twice_then_is_an_input():
    global lr
    try:
        jf = adjit.jit(step)
        for k in range(60):
            lr = 0.5 * 0.97 ** k
            _same(jf, step, w0, g0)
        assert jf.traces == 2
        # float32 arrays with a promoted Python float: NumPy's weak scalar rules
        lr = 0.3
        _same(jf, step, w0.astype(np.float32), g0.astype(np.float32))
    finally:
        lr = 0.2


fmt = 0.25


def needs_the_float(x):
    return x * float(repr(fmt))   # repr of a traced value is no number: cannot be an input


def test_float_slot_that_must_stay_a_float_is_keyed_by_value():
    global fmt
    try:
        jf = adjit.jit(needs_the_float)
        for v in (0.25, 0.5, 0.75, 0.5):
            fmt = v
            _same(jf, needs_the_float, w0)
            _same(jf, needs_the_float, w0)
    finally:
        fmt = 0.25


def test_adjit_wrappers_scalars_are_structure_a_users_stay_slots():
    # grad's and jacrev's own cells (argnums, has_aux) are fixed when the wrapper is made:
    # not read and keyed on every call of jit(hessian(f)) (~0.3 us); the user's scalar cell
    # under the same wrappers still is (a changed value traces again), and the answers are
    # NumPy's
    import ast
    import os
    pkg = os.path.dirname(adjit.__file__)
    for root, _, files in os.walk(pkg):  # what makes such a cell fixed: no adjit rebinds one
        for fn in files:
            if fn.endswith(".py"):
                with open(os.path.join(root, fn)) as fh:
                    tree = ast.parse(fh.read())
                assert not any(isinstance(n, ast.Nonlocal) for n in ast.walk(tree)), fn
    A = np.array([[1.0, -0.5, 0.25], [0.0, 2.0, -1.0], [0.5, 0.5, 1.5]])
    x = np.array([0.3, -0.2, 0.7])

    def f(x, A):
        return np.sum(np.tanh(A @ x) ** 2)

    def hess_by_hand(x, A, k=1.0):
        t = np.tanh(A @ x)
        return k * (A.T @ ((2 * (1 - t * t) * (1 - 3 * t * t))[:, None] * A))
    jh = adjit.jit(adjit.hessian(f))
    for _ in range(3):
        np.testing.assert_allclose(jh(x, A), hess_by_hand(x, A), rtol=1e-12, atol=1e-14)
    assert jh._nslots == 0  # nothing but the wrappers' argnums and has_aux
    jg = adjit.jit(adjit.grad(f, argnums=1))
    t = np.tanh(A @ x)
    for _ in range(3):
        np.testing.assert_allclose(jg(x, A), np.outer(2 * t * (1 - t * t), x), rtol=1e-12)
    assert jg._nslots == 0

    def make():
        k = 1.0

        def g(x, A):
            return k * f(x, A)

        def set_k(v):
            nonlocal k
            k = v
        return g, set_k
    g, set_k = make()
    jh = adjit.jit(adjit.hessian(g))
    for v in (1.0, 3.0, 3.0, -0.5):
        set_k(v)
        for _ in range(2):
            np.testing.assert_allclose(jh(x, A), hess_by_hand(x, A, v), rtol=1e-12, atol=1e-14)
    assert jh._nslots == 1
