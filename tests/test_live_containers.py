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
        assert jf.fast  # the hot path serves it (its generated reader passes LOG no input)
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


# --- Python floats in containers are scalar inputs: a schedule changed every step traces once --
SCHED = {"lr": 0.1, "mom": 0.9, "steps": 3, "tag": "sgd"}
SCHED_NEST = {"opt": (0.1, [0.9, {"wd": 1e-4}]), "n": 2}
w0 = np.array([1.0, -2.0, 0.5])
g0 = np.array([0.3, 0.25, -4.0])


def _bits(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(np.atleast_1d(got).view(np.uint8),
                                  np.atleast_1d(want).view(np.uint8))


def by_sched(w, g):
    return (w - SCHED["lr"] * g) * SCHED["mom"] + SCHED["steps"] * (SCHED["tag"] == "sgd")


def by_nested(w, g):
    lr, (mom, wd) = SCHED_NEST["opt"][0], (SCHED_NEST["opt"][1][0],
                                           SCHED_NEST["opt"][1][1]["wd"])
    return w * (1.0 - wd) - lr * g * mom * SCHED_NEST["n"]


Opt = collections.namedtuple("Opt", "lr mom")


class Stepper:
    def __init__(self):
        self.opt = Opt(0.1, 0.9)

    def __call__(self, w, g):
        return (w - self.opt.lr * g) * self.opt.mom


def _schedules():
    """(name, function, set(k): the container's floats for step k)."""
    def set_dict(k):
        SCHED["lr"] = 0.1 * 0.97 ** k
        SCHED["mom"] = 0.9 - 0.001 * k

    def set_nested(k):
        SCHED_NEST["opt"][1][1]["wd"] = 1e-4 * (k + 1)
        SCHED_NEST["opt"] = (0.5 / (k + 1), SCHED_NEST["opt"][1])

    lst = [0.1, 2.0]

    def by_list(w, g):
        return w - lst[0] * g + lst[1]

    def set_list(k):
        lst[0], lst[1] = 0.1 + 0.01 * k, np.float64(2.0 - k)  # a NumPy float too

    obj = Stepper()

    def set_obj(k):
        obj.opt = Opt(1.0 / (k + 3), 0.5 + k / 100)
    return [("global dict", by_sched, set_dict), ("global nested", by_nested, set_nested),
            ("closure list", by_list, set_list), ("self namedtuple", obj, set_obj)]


@pytest.mark.parametrize("case", range(4), ids=[s[0] for s in _schedules()])
def test_a_schedule_in_a_container_changed_every_step_traces_once(case):
    saved, saved_n = dict(SCHED), {k: v for k, v in SCHED_NEST.items()}
    try:
        _, f, setk = _schedules()[case]
        jf = adjit.jit(f)
        with warnings.catch_warnings():
            warnings.simplefilter("error")   # no retrace warning either
            for k in range(50):
                setk(k)
                _bits(jf(w0, g0), f(w0, g0))
        assert jf.traces == 1
    finally:
        SCHED.clear()
        SCHED.update(saved)
        SCHED_NEST.clear()
        SCHED_NEST.update(saved_n)
        SCHED_NEST["opt"] = (0.1, [0.9, {"wd": 1e-4}])


def test_value_and_grad_of_a_container_schedule_traces_once():
    from peers import central_diff
    cfg = {"c": 1.5, "d": [0.25, 2]}

    def loss(w):
        return np.sum(np.sin(w) * cfg["c"] + cfg["d"][0] * w * w) * cfg["d"][1]
    jv = adjit.jit(adjit.value_and_grad(loss))
    jf = adjit.jit(loss)
    for k in range(50):
        cfg["c"], cfg["d"][0] = 1.5 - 0.07 * k, 0.25 * (-1) ** k
        v, g = jv(w0)
        np.testing.assert_allclose(v, loss(w0), rtol=1e-14)
        # (native code's sin within its ulp bounds: from the 20th call under deterministic)
        np.testing.assert_allclose(jf(w0), loss(w0), rtol=1e-14)
        np.testing.assert_allclose(g, central_diff(loss, w0), rtol=1e-7, atol=1e-8)
    assert jv.traces == 1 and jf.traces == 1


def test_a_guard_on_a_container_float_takes_the_other_branch():
    cfg = {"lr": 0.2}

    def f(w, g):
        if cfg["lr"] > 0.5:
            return w - g
        return w - cfg["lr"] * g
    jf = adjit.jit(f)
    for k in range(20):
        cfg["lr"] = (0.1, 0.7, 0.3, 0.9)[k % 4] + k * 1e-3
        _bits(jf(w0, g0), f(w0, g0))
    assert jf.traces == 2  # one per branch


def test_signed_zero_and_nan_in_a_container_are_values_of_one_trace():
    box = {"z": 0.0, "n": [1.0]}

    def f(x):
        return 1.0 / (x * 0.0 + box["z"]) + box["n"][0]
    jf = adjit.jit(f)
    with np.errstate(divide="ignore", invalid="ignore"):
        for z, n in ((0.0, 1.0), (-0.0, 1.0), (0.0, float("nan")), (-0.0, -0.0),
                     (float("nan"), 2.0), (0.0, 1.0)):
            box["z"], box["n"][0] = z, n
            _bits(jf(x0), f(x0))
    assert jf.traces == 1


def test_a_container_structure_change_traces_again():
    cfg = {"lr": 0.5}

    def f(x):
        r = x * cfg["lr"]
        return r + len(cfg) + (cfg["extra"] if "extra" in cfg else 0) + \
            (7 if type(cfg["lr"]) is int else 0)
    jf = adjit.jit(f)
    traces = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for change in (lambda: None, lambda: cfg.update(lr=0.25),    # a value: no retrace
                       lambda: cfg.update(extra=1.0),                 # a new key
                       lambda: cfg.update(extra=3.0),                 # a value again
                       lambda: cfg.update(lr=2),                      # float -> int
                       lambda: cfg.update(lr=3),                      # an int: by value
                       lambda: (cfg.pop("extra"), cfg.update(lr=0.75))):  # back: cached
            change()
            for _ in range(2):
                _bits(jf(x0), f(x0))
            traces.append(jf.traces)
    assert traces == [1, 1, 2, 2, 3, 4, 4], traces
    lst = [0.5, 1.5]
    jl = adjit.jit(lambda x: x * lst[0] + len(lst))
    for v in ([0.5, 1.5], [0.25, 1.5], [0.25, 1.5, 2.0], [1.0, 1.5, 2.0]):
        lst[:] = v
        np.testing.assert_array_equal(jl(x0), x0 * v[0] + len(v))
    assert jl.traces == 2


def test_dict_keys_one_true_and_one_point_zero_are_keyed_apart():
    def make():
        d = {1: 2.0}

        def f(x):
            return x * d[1] + sum(k is True for k in d) + 10 * sum(type(k) is float for k in d)

        def rebind(v):
            nonlocal d
            d = v
        return f, rebind
    f, rebind = make()
    jf = adjit.jit(f)
    for d in ({1: 2.0}, {True: 2.0}, {1.0: 2.0}, {1: 3.0}, {True: 0.5}):
        rebind(d)
        for _ in range(3):  # the hot path too
            _bits(jf(x0), f(x0))
    assert jf.traces == 3


FLOG = [0.5]
FCFG = {"calls": 0.0, "k": 2.0}


def changes_float_containers(x):
    FLOG.append(1.0)
    FCFG["calls"] = FCFG["calls"] + 1.0
    return x * FCFG["k"] + len(FLOG)


def test_a_float_container_the_function_changes_is_changed_once_and_warned():
    try:
        jf = adjit.jit(changes_float_containers)
        with pytest.warns(RuntimeWarning, match=r"changes global `FLOG`, global `FCFG`.*once"):
            first = jf(x0)
        np.testing.assert_array_equal(first, x0 * 2.0 + 2)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for _ in range(4):
                np.testing.assert_array_equal(jf(x0), first)
        assert FLOG == [0.5, 1.0] and FCFG["calls"] == 1.0
    finally:
        FLOG[:] = [0.5]
        FCFG.update(calls=0.0, k=2.0)


def test_a_container_float_the_function_needs_as_a_float_stays_keyed():
    cfg = {"fmt": 0.25}

    def f(x):
        return x * float(repr(cfg["fmt"]))   # repr of a traced value is no number
    jf = adjit.jit(f)
    for v in (0.25, 0.5, 0.75, 0.5):
        cfg["fmt"] = v
        for _ in range(2):
            _bits(jf(x0), f(x0))


# --- more places and kinds of containers: a float32 argument stays float32 (weak floats) ------
def _same_bits(jf, f, *args):
    """jf(*args) has f(*args)'s dtype, shape and bits (NumPy running f is the reference)."""
    with np.errstate(all="ignore"):
        got, want = np.asarray(jf(*args)), np.asarray(f(*args))
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes(), (got, want)


Sched = collections.namedtuple("Sched", "lr mom")


def _holders():
    """(function, set the schedule's two floats) for containers in other places: a closure
    namedtuple (rebound), a nested closure container, and a dict attribute of `self`."""
    nt = Sched(0.1, 0.9)
    nest = {"opt": ({"lr": 0.1}, [0.9, 2]), "tag": "a"}

    def by_namedtuple(x):
        return x * nt.lr - nt.mom * x * x

    def set_nt(a, b):
        nonlocal nt
        nt = Sched(a, b)

    def by_nested(x):
        o = nest["opt"]
        return (x * o[0]["lr"] - o[1][0] * x * x) * o[1][1]

    class Opt:
        def __init__(self):
            self.cfg = {"lr": 0.1, "mom": 0.9}

        def step(self, x):
            return x * self.cfg["lr"] - self.cfg["mom"] * x * x
    opt = Opt()
    return [(by_namedtuple, set_nt),
            (by_nested, lambda a, b: (nest["opt"][0].update(lr=a),
                                      nest["opt"][1].__setitem__(0, b))),
            (opt.step, lambda a, b: opt.cfg.update(lr=a, mom=b))]


def _sum_sin(f):
    def loss(w):  # f in a closure cell: followed (its slots are loss's)
        return np.sum(np.sin(f(w)))
    return loss


def test_container_floats_are_weak_inputs_in_every_place():
    from peers import central_diff
    x32 = x0.astype(np.float32)
    for f, set_sched in _holders():
        jf = adjit.jit(f)

        # (jit does not follow a bound method held in a closure cell: the method case
        # checks jit(f) only)
        loss = _sum_sin(f) if not isinstance(f, types.MethodType) else None
        jvg = adjit.jit(adjit.value_and_grad(loss)) if loss else None
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no retrace warning
            for step in range(50):
                set_sched(0.1 / (1 + step), 0.9 - step * 1e-3)
                _same_bits(jf, f, x0)
                _same_bits(jf, f, x32)  # float32 stays float32, as with the float itself
                if jvg is None:
                    continue
                v, g = jvg(x0)
                np.testing.assert_allclose(v, loss(x0), rtol=1e-14, atol=0)
                np.testing.assert_allclose(g, central_diff(loss, x0), rtol=1e-7, atol=1e-9)
        assert jf.traces == 2 and (jvg is None or jvg.traces == 1), f


def test_a_container_of_arrays_the_function_appends_to_is_changed_not_its_copy():
    # jit gives f a copy holding the traced arrays; what f appends to the copy is made on
    # the container itself (as NumPy's run makes it), not lost with the copy
    def make():
        box = {"w": np.array([1.0, 2.0, -1.0]), "hist": []}
        lst = [np.ones(3)]

        def f(x):
            y = x * box["w"]
            box["hist"].append(np.sum(y))
            lst.append("seen")
            return y + len(lst)
        return f, box, lst
    f, box, lst = make()
    g, gbox, glst = make()
    jf = adjit.jit(f)
    with pytest.warns(RuntimeWarning, match=r"changes closure variable `box`, closure "
                                            r"variable `lst`.*once, when jit traces"):
        for _ in range(3):
            _bits(jf(x0), g(x0))
    assert len(lst) == len(glst) == 4 and lst[0] is not glst[0]
    assert all(type(a) is type(b) and a == b for a, b in zip(box["hist"], gbox["hist"]))
    assert len(box["hist"]) == 3 and box.keys() == gbox.keys()


def test_an_error_of_the_function_keeps_container_floats_inputs():
    # f fails for another reason than its traced floats (a wrong argument): the error is
    # raised, and the floats stay inputs (a schedule changed later still runs one trace)
    cfg = {"lr": 0.5}
    M = np.ones((3, 2))

    def f(x):
        return (x @ M) * cfg["lr"]
    jf = adjit.jit(f)
    with pytest.raises(ValueError):
        jf(np.ones(4))
    n = jf.traces
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for k in range(12):
            cfg["lr"] = 0.5 / (k + 1)
            _same_bits(jf, f, x0)
    assert jf.traces == n + 1


def test_retrace_warning_names_the_container_after_an_array_slot():
    # each live slot names its own key parts: an array slot before the container does not
    # shift the names (the warning named `M` for `cfg`'s entry)
    M = np.ones(3)
    lr = 0.5
    cfg = {"steps": 0}

    def f(x):
        return x * M * lr + cfg["steps"]
    jf = adjit.jit(f)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for v in range(10):
            cfg["steps"] = v
            _same_bits(jf, f, x0)
    msgs = [str(w.message) for w in caught if "traced" in str(w.message)]
    assert len(msgs) == 1 and "closure variable `cfg`['steps'] changed from 7 to 8" in msgs[0], \
        msgs


def test_floats_of_default_and_partial_containers_are_inputs_too():
    def f(x, cfg={"k": 2.0, "n": 1}):  # noqa: B006
        return x * cfg["k"] + cfg["n"]

    def g(x, opts):
        return x - opts[0] * x

    opts = [0.5]
    p = functools.partial(g, opts=opts)
    jf, jp = adjit.jit(f), adjit.jit(p)
    for k in range(20):
        f.__defaults__[0]["k"] = 2.0 + k / 7
        opts[0] = -0.5 + k / 3
        _bits(jf(x0), f(x0))
        _bits(jp(x0), p(x0))
    assert jf.traces == 1 and jp.traces == 1
    f.__defaults__[0]["n"] = 2          # an int: keyed by value
    _bits(jf(x0), f(x0))
    assert jf.traces == 2


def test_a_container_float_that_sets_a_shape_is_a_guard_on_its_value():
    cfg = {"n": 3.0, "s": 0.5}

    def f(x):
        return np.sum(np.ones(int(cfg["n"])) * cfg["s"]) + x
    jf = adjit.jit(f)
    for n, s in ((3.0, 0.5), (4.0, 0.5), (3.0, 0.25), (4.0, -1.0), (3.0, 0.5)):
        cfg["n"], cfg["s"] = n, s
        _bits(jf(x0), f(x0))
    assert jf.traces == 2  # one per length; `s` an input of both


HELD2 = types.SimpleNamespace(data=np.arange(3.0))


def test_a_dropped_trace_leaves_no_frozen_value_note():
    # f changes a float container (its first trace, on jit's copy, is dropped) and computes
    # a constant from an array jit does not reach: only the kept trace's note is used (a
    # dropped trace's note would stay, under an id a later trace may get)
    from adjit.tracer.frozen import FOUND
    cfg = {"lr": 0.5}

    def f(x):
        cfg["lr"] = cfg["lr"] + 1.0
        return x * np.sum(HELD2.data)
    jf = adjit.jit(f)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        np.testing.assert_array_equal(jf(x0), x0 * 3.0)
    assert sum("computes a value from the array" in str(w.message) for w in caught) == 1
    assert cfg == {"lr": 1.5} and not FOUND
