"""Every keyword of every dispatched NumPy function and ufunc is honoured (the result equals
NumPy's, dtype included, traced and replayed) or refused with an error naming the function, the
keyword and the user's line - never ignored. Integer and bool operands of ufuncs follow NumPy
(bitwise ops, invert, reciprocal), and order='F' reshapes have NumPy's values and JAX's
gradients."""
from __future__ import annotations

import inspect
import os
import warnings

import numpy as np
import pytest

from adjit import grad, jit, vjp
from adjit.tracer.np_dispatch import FUNCS, UFUNCS

RNG = np.random.default_rng(3)
A = RNG.uniform(-2, 2, (3, 4))
B = A > 0
I = RNG.integers(-9, 10, (3, 4))
SPD = A @ A.T + 3 * np.eye(3)
HERE = os.path.basename(__file__)


def numpy_function(name):
    return getattr(np.linalg, name[7:]) if name.startswith("linalg.") else getattr(np, name)

# one call per dispatched function: its arguments (the first is traced)
SAMPLES = {
    "all": (B,), "any": (B,), "allclose": (A, A + 1e-9), "isclose": (A, A + 1e-9),
    "amax": (A,), "amin": (A,), "max": (A,), "min": (A,), "argmax": (A,), "argmin": (A,),
    "sum": (A,), "mean": (A,), "prod": (A,), "var": (A,), "std": (A,), "cumsum": (A,),
    "broadcast_to": (A[0], (3, 4)), "clip": (A, -1, 1), "concatenate": ([A, A],),
    "stack": ([A, A],), "hstack": ([A, A],), "vstack": ([A, A],), "copy": (A,),
    "dot": (A, A.T), "matmul": (A, A.T), "inner": (A, A), "outer": (A[0], A[1]),
    "tensordot": (A, A.T, 1), "vdot": (A, A), "einsum": ("ij,kj->ik", A, A), "empty_like": (A,),
    "zeros_like": (A,), "ones_like": (A,), "full_like": (A, 3), "expand_dims": (A, 0),
    "flip": (A,), "linalg.norm": (A,), "moveaxis": (A, 0, 1), "ndim": (A,), "shape": (A,),
    "size": (A,), "ravel": (A,), "reshape": (A, (4, 3)), "squeeze": (A[None],),
    "swapaxes": (A, 0, 1), "take": (A, [0, 2]), "trace": (A,), "transpose": (A,),
    "where": (B, A, 0.0),
    "linalg.solve": (SPD, A[:, :2]), "linalg.inv": (SPD,), "linalg.det": (SPD,),
    "linalg.slogdet": (SPD,), "linalg.cholesky": (SPD,), "linalg.eigh": (SPD,),
    "linalg.eigvalsh": (SPD,), "linalg.matrix_power": (SPD, 3),
    "linalg.multi_dot": ([A, A.T, A],),
    "linalg.svd": (A,), "linalg.svdvals": (A,), "linalg.matrix_norm": (A,),
    "linalg.vector_norm": (A,), "linalg.pinv": (A,), "linalg.lstsq": (A.T, A[0, :]),
    "linalg.qr": (A,),
    # shape and indexing functions (issue 15 item 2)
    "flipud": (A,), "fliplr": (A,), "rot90": (A,), "roll": (A, 2), "rollaxis": (A, 1),
    "repeat": (A, 2), "tile": (A, (2, 1)), "diag": (A,), "diagflat": (A[0],), "diagonal": (A,),
    "triu": (A,), "tril": (A,), "kron": (A, A[:2, :2]), "cross": (A[:, :3], A[:, 1:]),
    "cumprod": (A,), "diff": (A,), "ediff1d": (A,), "gradient": (A,), "sort": (A,),
    "argsort": (A,), "take_along_axis": (A, np.argsort(A, axis=-1)), "median": (A,),
    "percentile": (A, 30.0), "quantile": (A, 0.7), "split": (A, 2, 1),
    "array_split": (A, 3), "hsplit": (A, 2), "vsplit": (A, 3), "dsplit": (A[..., None], 1),
    "atleast_1d": (A,), "atleast_2d": (A[0],), "atleast_3d": (A,), "pad": (A, 1),
    "select": ([B, ~B], [A, -A]), "piecewise": (A, [B], [np.sin, np.cos]),
    "append": (A, A), "insert": (A, 1, 5.0), "delete": (A, 1), "column_stack": ([A, A],),
    "dstack": ([A, A],), "block": ([[A, A]],), "meshgrid": (A[0], A[1]),
    "put_along_axis": (A, np.argsort(A, axis=-1), 1.0, -1), "nonzero": (B,),
    "argwhere": (B,), "flatnonzero": (B,), "unique": (I,), "linspace": (A[0, 0], A[1, 1]),
    "nansum": (A,), "nanprod": (A,), "nanmean": (A,), "nanmax": (A,), "nanmin": (A,), "nanvar": (A,),
    "nanstd": (A,), "copyto": (np.empty((3, 4)), A),
    # issue 15 item 1
    "sinc": (A,), "fix": (A * 3,), "round": (A * 3.3,), "around": (A * 3.3,),
    "nan_to_num": (A / (A - A[0, 0]),), "real": (A,), "imag": (A,),
    # issue 15 item 2: sorted data, which NumPy's partition leaves in order on every axis (its
    # order within a part is unspecified; tests/test_np_partition.py checks the contract)
    "partition": (np.sort(A, axis=None).reshape(3, 4), [0, 1, 2]),
    "argpartition": (np.sort(A, axis=None).reshape(3, 4), [0, 1, 2]),
}

# values tried for each keyword (NumPy's default is not among them, except where a default
# given explicitly must also work)
VALUES = {
    "axis": [0, -1, (0, 1), None], "dtype": [np.float32, np.int32, np.int64, np.float64, bool],
    "keepdims": [True, False], "order": ["F", "C", "A", "K"], "out": [np.empty((3, 4))],
    "where": [B, True], "initial": [5.0], "ddof": [1], "correction": [1], "mean": [A],
    "casting": ["unsafe", "no", "safe", "same_kind"], "subok": [True, False],
    "copy": [True, False, None], "mode": ["clip", "wrap", "raise"], "shape": [(2, 6), 12],
    "device": ["cpu"], "optimize": [True, False, "greedy", "optimal"], "rtol": [0.5], "atol": [0.5],
    "equal_nan": [True], "ord": [1, 2, np.inf, "fro"], "offset": [1], "axis1": [1],
    "axis2": [0], "fill_value": [2.5], "min": [-0.5], "max": [0.5], "a_min": [-0.5],
    "a_max": [0.5], "axes": [1, 2], "upper": [True, False], "UPLO": ["L", "U"],
    "k": [1, -2], "start": [2], "axisa": [0], "axisb": [0], "axisc": [0],
    "kind": ["stable", "quicksort", "heapsort"], "stable": [True, False],
    "overwrite_input": [True], "method": ["lower", "higher", "nearest", "midpoint", "weibull"],
    "weights": [np.ones((3, 4))], "n": [2, 0], "prepend": [0.5], "append": [[[1.0]] * 3],
    "to_end": [[1.0, 2.0]], "to_begin": [3.0], "edge_order": [2], "default": [-3.0],
    "return_index": [True], "return_inverse": [True], "return_counts": [True],
    "sorted": [True, False], "num": [5, 1], "endpoint": [False], "retstep": [True],
    "sparse": [True], "indexing": ["ij"],
    "decimals": [1, -1, 2], "nan": [1.5], "posinf": [9.0],
    "neginf": [-9.0], "full_matrices": [False, True], "compute_uv": [False],
    "hermitian": [True, False], "rcond": [0.1, None],
}


def _run_both(f, args):
    """(NumPy's result or exception, adjit's under jit - traced then replayed); every
    argument of f is traced."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            want = f(*args)
        except Exception as e:  # noqa: BLE001
            want = e
        try:
            jf = jit(f)
            got = [jf(*args), jf(*args)]
        except Exception as e:  # noqa: BLE001
            got = e
    return want, got


def _check(label, want, got, keyword=None):
    name = label.split("(")[0]
    if isinstance(got, Exception):
        msg = str(got)
        assert isinstance(got, (TypeError, NotImplementedError, ValueError, IndexError)), \
            (label, repr(got))
        if isinstance(want, Exception) and str(want) == msg:
            return  # NumPy's own argument check, before any dispatch
        assert HERE in msg, (label, "error does not name the user's line", msg)
        if not isinstance(want, Exception):  # a refusal: it names the function and keyword
            assert f"np.{name}" in msg, (label, msg)
            if keyword is not None:
                assert keyword in msg, (label, msg)
        return
    assert not isinstance(want, Exception), (label, "NumPy raises", repr(want), "adjit", got)
    for g in got:
        if name == "empty_like":  # NumPy's values are whatever was in memory
            g, want = np.asarray(g), np.zeros_like(want)
        if hasattr(type(want), "_fields") and any(isinstance(w, np.ndarray) for w in want):
            for gi, wi in zip(g, want):  # a named tuple of arrays (slogdet, eigh)
                np.testing.assert_allclose(np.asarray(gi), wi, rtol=1e-12, err_msg=label)
            continue
        if isinstance(want, (tuple, list)) and any(isinstance(w, np.ndarray) for w in want):
            # several arrays (np.split, np.nonzero, np.meshgrid...): each one checked
            assert type(g) is type(want) and len(g) == len(want), (label, g)
            for w1, g1 in zip(want, g):
                _check(label, w1, [g1])
            continue
        if isinstance(want, tuple):
            assert tuple(g) == want, label
            continue
        w, g = np.asarray(want), np.asarray(g)
        assert g.dtype == w.dtype and g.shape == w.shape, (label, g.dtype, w.dtype, g.shape,
                                                           w.shape)
        np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64),
                                   rtol=1e-6 if w.dtype == np.float32 else 1e-12,
                                   atol=1e-12, err_msg=label)


def _params(name):
    sig = inspect.signature(numpy_function(name))
    return [(k, p) for k, p in sig.parameters.items()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY) and
            p.default is not p.empty]


def test_every_function_has_a_sample():
    assert set(FUNCS) <= set(SAMPLES)


def test_implementations_use_numpys_parameter_names():
    # the dispatch binds a call to NumPy's own signature and passes the arguments by name
    for name, fn in FUNCS.items():
        theirs = inspect.signature(numpy_function(name)).parameters
        kw = [p for p in theirs.values() if p.kind is p.VAR_KEYWORD]
        for k, p in inspect.signature(fn).parameters.items():
            if p.kind is p.VAR_POSITIONAL:
                continue
            assert k in theirs or (kw and name == "einsum") or \
                (name == "einsum" and k == "subscripts"), (name, k)


@pytest.mark.parametrize("name", sorted(set(SAMPLES) - {"matmul"}))  # a ufunc: see below
def test_function_keywords_honoured_or_refused(name):
    npf = numpy_function(name)
    args = SAMPLES[name]
    i = 1 if name == "einsum" else 0  # the traced argument; the others are constants

    def call(**kw):
        return lambda t: npf(*args[:i], t, *args[i + 1:], **kw)
    _check(name, *_run_both(call(), args[i:i + 1]))
    for key, _ in _params(name):
        if key not in VALUES:
            raise AssertionError(f"no test values for keyword {key!r} of np.{name}")
        for v in VALUES[key]:
            want, got = _run_both(call(**{key: v}), args[i:i + 1])
            _check(f"{name}({key}={v!r})", want, got, key)


@pytest.mark.parametrize("method,args", [
    ("sum", ()), ("mean", ()), ("max", ()), ("min", ()), ("prod", ()), ("var", ()),
    ("std", ()), ("argmax", ()), ("argmin", ()), ("cumsum", ()), ("all", ()), ("any", ()),
    ("clip", (-1, 1)), ("dot", (A.T,)), ("ravel", ()), ("flatten", ()), ("reshape", ((4, 3),)),
    ("astype", (np.int32,))])
def test_method_keywords_honoured_or_refused(method, args):
    x = B if method in ("all", "any") else A
    keys = {"dtype", "keepdims", "ddof", "where", "initial", "order", "out", "axis",
            "casting", "copy"}
    _check(method, *_run_both(lambda a: getattr(a, method)(*args), (x,)))
    for key in keys - ({"dtype"} if method == "astype" else set()):
        for v in VALUES[key]:
            def f(a, v=v, key=key):
                return getattr(a, method)(*args, **{key: v})
            want, got = _run_both(f, (x,))
            if isinstance(want, TypeError) and isinstance(got, TypeError) and \
                    "argument" in str(want) and "argument" in str(got):
                continue  # ndarray's method does not take it either
            if isinstance(got, Exception) and not isinstance(want, Exception):
                assert key in str(got) and HERE in str(got), (method, key, str(got))
                continue
            _check(f"{method}({key}={v!r})", want, got)


# --- ufuncs ------------------------------------------------------------------------------------
OPERANDS = {"bool": np.array([True, False, True, True]),
            "i32": np.array([0, 1, -1, 7], np.int32), "i64": np.array([0, 1, -2, -8]),
            "f32": np.array([0.5, -1.5, 2.0, 0.0], np.float32),
            "f64": np.array([0.5, -1.5, 2.0, -0.0])}
SCALARS = [True, 3, -2, 2.5]


def _ufunc_cases():
    for name in sorted(UFUNCS):
        uf = getattr(np, name)
        for d0, x in OPERANDS.items():
            if uf.nin == 1:
                yield name, (x,)
                continue
            for d1, y in OPERANDS.items():
                yield name, (x, y[::-1].copy())
            for s in SCALARS:
                yield name, (x, s)
                yield name, (s, x)


@pytest.mark.parametrize("name", sorted(UFUNCS))
def test_ufuncs_match_numpy_on_every_dtype(name):
    # the value and dtype NumPy gives, or a clear refusal (never a KeyError, never a result
    # of another dtype: np.invert on ints is bitwise, np.reciprocal on ints stays int)
    uf = getattr(np, name)
    for n, args in _ufunc_cases():
        if n != name:
            continue
        traced = [i for i, a in enumerate(args) if isinstance(a, np.ndarray)]

        def f(t, i=traced[0], args=args):
            xs = list(args)
            xs[i] = t
            return uf(*xs)
        want, got = _run_both(f, (args[traced[0]],))
        label = f"{name}({', '.join(str(getattr(a, 'dtype', type(a).__name__)) for a in args)})"
        if isinstance(got, TypeError) and "dtype traced arrays do not support" in str(got):
            continue  # NumPy gives float16 or int8 (bool operands)
        _check(label, want, got)


@pytest.mark.parametrize("name", ["add", "multiply", "sqrt", "exp", "divide", "negative",
                                  "maximum", "less", "bitwise_and", "invert", "reciprocal"])
def test_ufunc_keywords_honoured_or_refused(name):
    uf = getattr(np, name)
    x = OPERANDS["i64"] if name in ("bitwise_and", "invert", "reciprocal") else A[0]
    args = (x,) * uf.nin
    kws = [("dtype", v) for v in VALUES["dtype"]] + [
        ("casting", "unsafe"), ("casting", "same_kind"), ("order", "F"), ("order", "K"),
        ("subok", False), ("subok", True), ("where", x > 0), ("signature", None),
        ("out", np.empty(x.shape, x.dtype))]
    for key, v in kws:
        want, got = _run_both(lambda *a, key=key, v=v: uf(*a, **{key: v}), args)
        _check(f"{name}({key}={v!r})", want, got, key)


@pytest.mark.parametrize("dt", ["i32", "i64", "bool"])
def test_integer_ufuncs_native_and_interpreted(dt):
    # bitwise and/or/not lowered to native code give NumPy's bits, including the extremes
    info = np.iinfo(np.int32 if dt == "i32" else np.int64) if dt != "bool" else None
    x = OPERANDS[dt] if dt == "bool" else np.array(
        [0, 1, -1, 5, info.min, info.max, -6, 12], OPERANDS[dt].dtype)
    y = x[::-1].copy()
    fns = [lambda a, b: a & b, lambda a, b: a | b, lambda a, b: ~a, lambda a, b: np.invert(b),
           lambda a, b: np.bitwise_and(a, 6), lambda a, b: np.bitwise_or(a, b),
           lambda a, b: np.logical_and(a, b), lambda a, b: np.logical_not(a),
           lambda a, b: a ^ b, lambda a, b: np.bitwise_xor(a, 3), lambda a, b: 5 ^ a]
    if dt != "bool":
        fns.append(lambda a, b: np.reciprocal(a))
    for f in fns:
        want, got = _run_both(f, (x, y))
        _check("integer ufunc", want, got)


def test_unsupported_integer_ufuncs_refuse_clearly():
    for uf in (np.left_shift, np.right_shift, np.gcd):
        with pytest.raises(NotImplementedError, match=f"np.{uf.__name__} .*{HERE}"):
            jit(lambda a: uf(a, 2))(OPERANDS["i64"])
    with pytest.raises(TypeError, match=f"float.*{HERE}"):
        jit(lambda a: a & 1)(A)
    with pytest.raises(TypeError, match=f"{HERE}"):
        jit(lambda a: ~a)(A)


# --- order='F' -------------------------------------------------------------------------------
def _jnp():
    try:
        from tests.peers import require
    except ImportError:
        from peers import require
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    return jax, jnp


@pytest.mark.parametrize("fn,jfn", [
    (lambda np_, x: np_.reshape(x, (2, 6), order="F"), None),
    (lambda np_, x: np_.reshape(x, (4, 3, 1), order="F"), None),
    (lambda np_, x: np_.ravel(x, order="F"), None),
    (lambda np_, x: x.reshape((6, 2), order="F"), None),
    (lambda np_, x: x.reshape(12, order="F"), None),
    (lambda np_, x: x.ravel("F"), None),
    (lambda np_, x: x.flatten("F") if np_ is np else x.flatten(order="F"), None),
])
def test_order_f_values_and_gradients_match_jax(fn, jfn):
    jax, jnp = _jnp()
    x = A
    w = RNG.uniform(-1, 1, fn(np, x).shape)
    np.testing.assert_array_equal(jit(lambda a: fn(np, a))(x), fn(np, x))
    np.testing.assert_array_equal(jit(lambda a: fn(np, a))(x), fn(np, x))
    g = grad(lambda a: np.sum(fn(np, a) * w))(x)
    gj = jax.grad(lambda a: jnp.sum(fn(jnp, a) * w))(jnp.asarray(x))
    np.testing.assert_allclose(g, np.asarray(gj), rtol=1e-12)
    out, back = vjp(lambda a: fn(np, a), x)
    np.testing.assert_array_equal(out, fn(np, x))
    np.testing.assert_allclose(back(w)[0], np.asarray(gj), rtol=1e-12)


def test_order_a_and_k_refused():
    for f in (lambda a: np.reshape(a, 12, order="A"), lambda a: np.ravel(a, order="K"),
              lambda a: a.reshape(12, order="A")):
        with pytest.raises(TypeError, match=f"order='[AK]'.*{HERE}"):
            jit(f)(A)


def test_signatures_read_from_code_objects_equal_inspects():
    # np_dispatch reads NumPy's (and its implementations') parameters from the code object of
    # the Python function (what NumPy's public functions wrap), not through inspect.signature
    # (50-150 us a function on a process's first trace): the same parameters, kinds and defaults
    from adjit.tracer import np_dispatch

    def read(sig):
        return [(k, p.name, p.kind, p.default) for k, p in sig.parameters.items()]

    def every_kind(a, b=2, /, c=3, *args, d, e=5, **kw):
        pass

    import functools

    @functools.wraps(every_kind)  # a Python function that wraps another: read the inner one
    def wrapper(*args, **kwargs):
        pass

    fns = [numpy_function(n) for n in FUNCS] + list(FUNCS.values()) + [every_kind, wrapper]
    light = 0
    for f in fns:
        ours = np_dispatch.signature(f)
        assert read(ours) == read(inspect.signature(f)), f
        light += type(ours) is np_dispatch._Signature
    assert light > len(FUNCS)  # most of them: NumPy's Python functions and the implementations
    sig = np_dispatch.signature(every_kind)  # the general path binds with inspect's own rules
    assert dict(sig.bind(1, 2, 3, 4, d=6, z=7).arguments) == dict(
        inspect.signature(every_kind).bind(1, 2, 3, 4, d=6, z=7).arguments)
    with pytest.raises(TypeError):
        sig.bind(d=2)  # `a` missing


def test_a_first_dispatch_does_not_call_inspect_signature(monkeypatch):
    from adjit import _ast
    from adjit.tracer import np_dispatch
    calls = []
    real = _ast.signature
    monkeypatch.setattr(_ast, "signature", lambda f: calls.append(f) or real(f))
    np_dispatch._signatures.cache_clear()
    np_dispatch._PLANS.clear()
    x = np.linspace(0.5, 2.0, 6).reshape(2, 3)
    want = jit(lambda x: np.sum(np.max(x, axis=1, keepdims=True) * np.mean(x, axis=0)))
    got = want(x)  # the trace: every NumPy function's first dispatch
    # (the user's own functions are still read through inspect: jit and grad name arguments)
    numpys = {id(f) for n in ("max", "mean", "sum") for f in (numpy_function(n), FUNCS[n])}
    assert [f for f in calls if id(f) in numpys] == []
    t = np.max(x, axis=1, keepdims=True)
    np.testing.assert_allclose(got, np.sum(t * np.mean(x, axis=0)), rtol=1e-12)
