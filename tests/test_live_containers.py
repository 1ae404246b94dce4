"""Containers of Python scalars a jitted function reads without being passed them (a global
`cfg = {"k": 2.0}`, a closure cell, an attribute of `self`, a default argument value, the
arguments of a `functools.partial`) are keyed by value like a plain scalar global: a changed
`cfg["k"] = 3.0` traces again instead of replaying the trace that folded 2.0 (a silent wrong
answer before). The trace cache is bounded per function (least recently used out) and a
function that keeps tracing is told which value changed. Every test compares the jitted
function with the same function run by NumPy."""
from __future__ import annotations

import collections
import functools
import sys
import types
import warnings

import numpy as np
import pytest

import adjit
import adjit.transforms.jit  # noqa: F401

jitmod = sys.modules["adjit.transforms.jit"]  # the module (adjit.transforms.jit is the function)

x0 = np.array([0.5, -1.0, 2.0])
Cfg = collections.namedtuple("Cfg", "scale shift")


def _same(jf, f, *args):
    got, want = np.asarray(jf(*args)), np.asarray(f(*args))
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)


CFG = {"k": 2.0, "mode": "sin", "opts": (1, {"deep": 0.5})}


def by_cfg(x):
    y = np.sin(x) if CFG["mode"] == "sin" else np.cos(x)
    return y * CFG["k"] + CFG["opts"][0] - CFG["opts"][1]["deep"] * x


def test_global_dict_of_scalars_changed_in_place():
    saved = {**CFG}
    try:
        jf = adjit.jit(by_cfg)
        for change in ({"k": 3.0}, {"mode": "cos"}, {"opts": (2, {"deep": 0.5})},
                       {"opts": (2, {"deep": -0.0})}, {"k": 2.0}, {"mode": "sin"}):
            CFG.update(change)
            for _ in range(3):  # the hot path too
                _same(jf, by_cfg, x0)
        CFG["opts"][1]["deep"] = 7.0   # a nested dict changed in place
        _same(jf, by_cfg, x0)
    finally:
        CFG.clear()
        CFG.update(saved)


def test_closure_containers_tuple_list_namedtuple():
    def make():
        lst = [2.0, 1]
        nt = Cfg(1.5, -0.5)
        tup = ((0.25,), "a")

        def f(x):
            r = x * lst[0] + lst[1] + x * nt.scale + nt.shift
            return r * tup[0][0] if tup[1] == "a" else r

        def set_nt(v):
            nonlocal nt, tup
            nt, tup = v
        return f, lst, set_nt
    f, lst, set_nt = make()
    jf = adjit.jit(f)
    _same(jf, f, x0)
    lst[0] = -3.0
    _same(jf, f, x0)
    lst.append(9)          # a new structure
    _same(jf, f, x0)
    set_nt((Cfg(0.0, 4.0), ((0.25,), "a")))
    _same(jf, f, x0)
    set_nt((Cfg(0.0, 4.0), ((0.75,), "b")))
    _same(jf, f, x0)
    lst[1] = True          # 1 and True are keyed apart, as NumPy computes them apart
    _same(jf, f, x0)


class Model:
    def __init__(self):
        self.cfg = {"scale": 2.0, "act": "tanh"}
        self.sizes = [3]

    @adjit.jit
    def __call__(self, x):
        y = np.tanh(x) if self.cfg["act"] == "tanh" else np.sin(x)
        return y * self.cfg["scale"] + len(self.sizes)


def test_self_attribute_dict_of_scalars():
    m = Model()
    want = lambda x: Model.__call__.__wrapped__(m, x)  # noqa: E731
    _same(m, want, x0)
    m.cfg["scale"] = -1.0
    _same(m, want, x0)
    m.cfg["act"] = "sin"
    _same(m, want, x0)
    m.sizes.append(4)
    _same(m, want, x0)


HIST: list = []


def reads_history(x):
    return x * (HIST[-1] if HIST else 1.0) + len(HIST)


def test_history_list_appended_outside_is_seen():
    try:
        jf = adjit.jit(reads_history)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # it retraces on every append
            for k in range(6):
                _same(jf, reads_history, x0)
                HIST.append(0.5 * k)
    finally:
        HIST.clear()


LOG: list = []


def appends_to_log(x):
    LOG.append("called")
    return x * 2.0 + len(LOG)


def test_container_the_function_appends_to_warns_and_is_traced_once():
    # jit does not repeat a trace's Python side effects: the append happens once (as in
    # JAX), and jit says so instead of tracing on every call
    try:
        jf = adjit.jit(appends_to_log)
        with pytest.warns(RuntimeWarning, match=r"changes global `LOG`.*once, when jit traces"):
            first = jf(x0)
        np.testing.assert_allclose(first, x0 * 2.0 + 1)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for _ in range(4):
                np.testing.assert_allclose(jf(x0), first)
        assert LOG == ["called"] and jf.traces == 1
    finally:
        LOG.clear()


def test_signed_zero_in_a_container_is_keyed_by_bits():
    box = [0.0]

    def f(x):
        return 1.0 / (x * 0.0 + box[0])
    jf = adjit.jit(f)
    with np.errstate(divide="ignore"):
        for v in (0.0, -0.0, 0.0):
            box[0] = v
            _same(jf, f, x0)


def test_jit_grad_sees_a_changed_container_scalar():
    from peers import central_diff
    cfg = {"c": 1.5}

    def loss(w):
        return np.sum(np.sin(w) * cfg["c"])
    jg = adjit.jit(adjit.grad(loss))
    for v in (1.5, -2.0, 0.25):
        cfg["c"] = v
        np.testing.assert_allclose(jg(x0), central_diff(loss, x0), rtol=1e-7, atol=1e-8)


# --- the trace cache is bounded per function, least recently used out -------------------------
N = 0


def adds_n(x):
    return x * 2.0 + N


def test_cache_is_bounded_and_an_evicted_variant_traces_again(monkeypatch):
    global N
    monkeypatch.setattr(jitmod, "MAX_VARIANTS", 4)
    try:
        jf = adjit.jit(adds_n)
        with pytest.warns(RuntimeWarning, match="more than 4 variants"):
            for v in range(10):
                N = v
                for _ in range(3):  # the hot path too
                    _same(jf, adds_n, x0)
                assert len(jf.cache) <= 4 and len({id(b) for b in jf.fast.values()}) <= 4
        assert jf.traces == 10
        N = 0                      # evicted long ago: traced again, the right answer
        for _ in range(3):
            _same(jf, adds_n, x0)
        assert jf.traces == 11
        # the most recently used variant is kept: 0 used between new values never retraces
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for v in range(100, 110):
                N = v
                _same(jf, adds_n, x0)
                N = 0
                _same(jf, adds_n, x0)
        assert jf.traces == 21
    finally:
        N = 0


def test_static_argument_values_are_bounded_too(monkeypatch):
    monkeypatch.setattr(jitmod, "MAX_VARIANTS", 3)

    def f(x, s):
        return x * s
    jf = adjit.jit(f, static_argnums=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for s in [1, 2, 3, 4, 5, 1, 2, 5, 4]:
            _same(jf, f, x0, s)
            assert len(jf.cache) <= 3


def test_retrace_warning_names_the_global_and_its_old_and_new_values():
    global N
    try:
        jf = adjit.jit(adds_n)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for v in range(12):
                N = v
                _same(jf, adds_n, x0)
        msgs = [str(w.message) for w in caught if "traced" in str(w.message)]
        assert len(msgs) == 1, msgs
        assert "because global `N` changed from 7 to 8" in msgs[0], msgs[0]
    finally:
        N = 0


def test_retrace_warning_names_the_container_entry_and_the_static_argument():
    cfg = {"steps": 0, "lr": 0.5}

    def f(x, mode):
        return x * cfg["steps"] if mode == "a" else x
    jf = adjit.jit(f, static_argnames="mode")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for v in range(10):
            cfg["steps"] = v
            _same(jf, f, x0, "a")
    msgs = [str(w.message) for w in caught if "traced" in str(w.message)]
    assert len(msgs) == 1 and "closure variable `cfg`['steps'] changed from 7 to 8" in msgs[0], \
        msgs
    jf = adjit.jit(f, static_argnames="mode")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for v in range(10):
            _same(jf, f, x0, f"m{v}")
    msgs = [str(w.message) for w in caught if "traced" in str(w.message)]
    assert len(msgs) == 1 and \
        "static argument 'mode' (position 1) changed from 'm7' to 'm8'" in msgs[0], msgs


# --- other places jit read values from without keying them ------------------------------------
def test_mutable_default_argument_values():
    def f(x, cfg={"k": 2.0}, w=np.ones(3), *, shift=0.5, opts=[1.0]):  # noqa: B006
        return x * cfg["k"] * w + shift + opts[0]
    jf = adjit.jit(f)
    _same(jf, f, x0)
    f.__defaults__[0]["k"] = -3.0        # the default dict changed in place
    _same(jf, f, x0)
    f.__defaults__[1][:] = 4.0           # the default array written in place
    _same(jf, f, x0)
    f.__kwdefaults__["opts"].append(2)   # a keyword-only default list changed
    _same(jf, f, x0)
    f.__kwdefaults__["shift"] = 1.25     # a keyword-only default rebound
    _same(jf, f, x0)
    f.__defaults__ = ({"k": 9.0}, np.full(3, 2.0))   # the defaults tuple replaced
    _same(jf, f, x0)


def test_partial_arguments_are_read_every_call():
    def g(x, cfg, w, mode="a"):
        return x * cfg["k"] * w if mode == "a" else x - w
    def h(cfg, w, x):
        return g(x, cfg, w)
    cfg, w = {"k": 2.0}, np.ones(3)
    p = functools.partial(g, w=w, mode="a")
    p2 = functools.partial(h, cfg, w)
    jp, jp2 = adjit.jit(p), adjit.jit(p2)
    _same(jp, p, x0, cfg)
    _same(jp2, p2, x0)
    cfg["k"] = 5.0
    w[:] = -1.0
    _same(jp, p, x0, cfg)
    _same(jp2, p2, x0)
    p.keywords["mode"] = "b"
    _same(jp, p, x0, cfg)


SCALE = 2.0


class Scaled:
    def __init__(self):
        self.k = 2.0
        self.cfg = {"bias": 1.0}

    def __call__(self, x):
        return x * SCALE * self.k + self.cfg["bias"]

    def method(self, x):
        return x * self.k - self.cfg["bias"]


def test_callable_object_and_bound_method_read_their_scalars_every_call():
    global SCALE
    obj = Scaled()
    jc, jm = adjit.jit(obj), adjit.jit(obj.method)
    try:
        for change in (lambda: None, lambda: setattr(obj, "k", -1.5),
                       lambda: obj.cfg.update(bias=4.0), lambda: globals().update(SCALE=3.0)):
            change()
            for _ in range(2):
                _same(jc, obj, x0)
                _same(jm, obj.method, x0)
    finally:
        SCALE = 2.0


# --- values read where jit cannot substitute traced ones: keyed on every call -----------------
EPS = 1e-3
OPTS = {"power": 2, "offset": 0.5}
NS = types.SimpleNamespace(lr=0.1, sched={"warm": 1.0}, data=np.arange(3.0))
TRACE_LOG: list = []


def _normalize(x):
    return x / (np.sum(x ** OPTS["power"]) + EPS) + OPTS["offset"]


def _log_shape(x):
    TRACE_LOG.append(x.shape)


def uses_helpers(x):
    _log_shape(x)
    return _normalize(x) * NS.lr * NS.sched["warm"] + NS.data


def test_helper_globals_and_global_object_attributes_are_keyed():
    global EPS
    saved = (EPS, dict(OPTS), NS.lr, NS.data)
    try:
        jf = adjit.jit(uses_helpers)
        with pytest.warns(RuntimeWarning, match="changes global `TRACE_LOG`"):
            _same(jf, uses_helpers, x0)
        steps = (lambda: globals().update(EPS=0.25), lambda: OPTS.update(power=4),
                 lambda: OPTS.update(offset=-0.0), lambda: setattr(NS, "lr", 3.0),
                 lambda: NS.sched.update(warm=0.5), lambda: setattr(NS, "data", np.ones(3)))
        for step in steps:
            step()
            for _ in range(2):
                _same(jf, uses_helpers, x0)
        assert jf.traces == 1 + len(steps)
        NS.data[:] = 7.0    # an array bound by reference: in-place writes show
        _same(jf, uses_helpers, x0)
        assert jf.traces == 1 + len(steps)
    finally:
        EPS, NS.lr, NS.data = saved[0], saved[2], saved[3]
        OPTS.clear()
        OPTS.update(saved[1])
        NS.sched["warm"] = 1.0
        TRACE_LOG.clear()


CALLS = 0
SCALE2 = 2.0


def assigns_a_global(x):
    global CALLS
    CALLS += 1
    return x * SCALE2


def test_function_that_assigns_a_global_still_sees_the_others():
    global SCALE2
    try:
        jf = adjit.jit(assigns_a_global)
        _same(jf, lambda x: x * SCALE2, x0)
        SCALE2 = -4.0
        _same(jf, lambda x: x * SCALE2, x0)
    finally:
        SCALE2 = 2.0
