"""Identity and containers of the arrays jit reads without being passed them.

jit gives every array object one traced value, however the function reaches it (an argument,
a global, a closure cell, an element of a tuple / list / dict / namedtuple held there, an
attribute of `self`), so `x is y` inside the trace is what NumPy says, and the arrays inside
containers are read on every call like a plain global's. Every test compares with the same
function run by NumPy; gradients with central differences of the NumPy function (or JAX).
"""
from __future__ import annotations

import collections

import numpy as np
import pytest

import adjit

from peers import require
from peers import central_diff as _fd

A = np.ones(3)
B = np.full(3, 2.0)
ALIAS = A
ARGS = (A, B)
x0 = np.array([0.5, -1.0, 2.0])

Pair = collections.namedtuple("Pair", "first second")


def _check(jf, f, *args):
    np.testing.assert_allclose(jf(*args), f(*args), rtol=1e-12, atol=1e-12)


def via_tuple(v):
    return v + ARGS[1] if ARGS[0] is A else ARGS[0] + 3 * v


def two_names(v):
    return v * 2.0 if A is ALIAS else v * 3.0


def loss_tuple(v):  # the globals read here, not through a helper (whose globals are frozen)
    return np.sum((v + ARGS[1] if ARGS[0] is A else ARGS[0] + 3 * v) ** 2)


def loss_names(v):
    return np.sum((v * 2.0 if A is ALIAS else v * 3.0) * v)


def _grads(loss):
    want = _fd(loss, x0)
    np.testing.assert_allclose(adjit.jit(adjit.grad(loss))(x0), want, rtol=1e-7)
    np.testing.assert_allclose(adjit.grad(loss)(x0), want, rtol=1e-7)
    val, g = adjit.jit(adjit.value_and_grad(loss))(x0)
    np.testing.assert_allclose(val, loss(x0), rtol=1e-12)
    np.testing.assert_allclose(g, want, rtol=1e-7)
    val, g = adjit.value_and_grad(loss)(x0)
    np.testing.assert_allclose(val, loss(x0), rtol=1e-12)
    np.testing.assert_allclose(g, want, rtol=1e-7)


def test_brief_example_args0_is_a_under_jit_and_grad():
    _check(adjit.jit(via_tuple), via_tuple, x0)
    _grads(loss_tuple)


def test_two_names_of_one_array_are_one_object():
    _check(adjit.jit(two_names), two_names, x0)
    _grads(loss_names)


def _containers():
    """Container kinds holding A (and B): how to read A back from each."""
    return {
        "tuple": ((A, B), lambda c: c[0]),
        "list": ([A, B], lambda c: c[0]),
        "dict": ({"b": B, "a": A}, lambda c: c["a"]),
        "nested": ({"k": [(B, {"deep": A})]}, lambda c: c["k"][0][1]["deep"]),
        "namedtuple": (Pair(A, B), lambda c: c.first),
    }


@pytest.mark.parametrize("kind", list(_containers()))
def test_container_element_is_the_global_under_jit(kind):
    cont, get = _containers()[kind]
    glob = {"CONT": cont, "A": A, "np": np, "get": get}
    exec("def f(v):\n"
         "    e = get(CONT)\n"
         "    return v * e + 1.0 if e is A else v - e\n", glob)
    exec("def loss(v):\n"
         "    e = get(CONT)\n"
         "    return np.sum((v * e + 1.0 if e is A else v - e) ** 2)\n", glob)
    f = glob["f"]
    jf = adjit.jit(f)
    _check(jf, f, x0)
    _check(jf, f, x0)  # the hot path
    _grads(glob["loss"])


def test_same_array_through_two_containers_and_a_closure():
    c1, c2 = (A,), {"a": [A]}

    def f(v):
        same = c1[0] is c2["a"][0] and c2["a"][0] is ALIAS
        return v * c1[0] if same else v + 10.0
    jf = adjit.jit(f)
    _check(jf, f, x0)
    _check(jf, f, x0)


def test_argument_that_is_also_a_global_keeps_its_identity():
    def f(v):
        return v * 2.0 if v is A else v * 3.0 + A
    jf = adjit.jit(f)
    for arg in (A, x0, A, B, A, x0):  # alternating: each aliasing pattern its own trace
        for _ in range(3):            # and the hot path on repeats
            _check(jf, f, arg)
    assert jf.traces == 2


def test_two_arguments_that_are_one_array():
    def f(u, v):
        return u * 2.0 if u is v else u - v
    jf = adjit.jit(f)
    for u, v in [(A, A), (A, B), (B, B), (x0, A), (A, A)]:
        for _ in range(2):
            _check(jf, f, u, v)
    assert jf.traces == 2


def test_grad_of_an_argument_is_a_new_value_as_in_jax():
    # under grad the differentiated argument is a traced value, never an array from outside:
    # `v is A` is False there (as in JAX and HIPS autograd), and central differences agree
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)

    def loss(v):
        return np.sum(v * 2.0 if v is A else v * v)

    def loss_jax(v):
        return jax.numpy.sum(v * 2.0 if v is A else v * v)
    want = np.asarray(jax.grad(loss_jax)(A))
    np.testing.assert_allclose(want, _fd(loss, A), rtol=1e-7)
    np.testing.assert_allclose(adjit.grad(loss)(A), want, rtol=1e-12)
    np.testing.assert_allclose(adjit.jit(adjit.grad(loss))(A), want, rtol=1e-12)


def test_container_arrays_are_read_every_call():
    lst = [np.arange(3.0), np.ones(3)]
    d = {"w": np.arange(3.0)}
    nt = Pair(np.arange(3.0), 2.0)

    def f(v):
        return v * lst[0] + np.sum(lst[1]) + d["w"] * nt.first + nt.second
    jf = adjit.jit(f)
    _check(jf, f, x0)
    lst[0][0] = 5.0                 # in place, as for a plain global
    _check(jf, f, x0)
    lst[0] = np.full(3, -4.0)       # an element replaced
    _check(jf, f, x0)
    d["w"] = np.array([7.0, 8.0, 9.0])
    _check(jf, f, x0)
    nt.first[:] = 3.0
    _check(jf, f, x0)
    assert jf.traces == 1
    lst[1] = np.ones(5)             # a new shape: traced again
    _check(jf, f, x0)
    lst.append(np.ones(3))          # a new structure: traced again
    _check(jf, f, x0)
    assert jf.traces == 3


def test_container_scalars_are_keyed_by_value():
    cfg = {"w": np.arange(3.0), "scale": 2.0, "mode": "a"}

    def f(v):
        out = v * cfg["w"] * cfg["scale"]
        return out + 1.0 if cfg["mode"] == "a" else out
    jf = adjit.jit(f)
    _check(jf, f, x0)
    cfg["scale"] = 3.0
    _check(jf, f, x0)
    cfg["mode"] = "b"
    _check(jf, f, x0)


def test_containers_in_closure_cells_and_two_globals_of_one_list():
    def make():
        params = [np.arange(3.0), np.ones(3)]
        same = params

        def f(v):
            w = params[0] * v if params is same and same[1] is params[1] else v
            return w + params[1]
        return f, params
    f, params = make()
    jf = adjit.jit(f)
    _check(jf, f, x0)
    params[1] = np.full(3, 6.0)
    _check(jf, f, x0)
    params[0] *= 2
    _check(jf, f, x0)


def test_rebinding_a_global_container():
    global ARGS
    jf = adjit.jit(via_tuple)
    _check(jf, via_tuple, x0)
    saved = ARGS
    try:
        ARGS = (B, A)                 # other arrays: the else branch
        _check(jf, via_tuple, x0)
        ARGS = (A, np.full(3, 7.0))   # back to A first: the if branch with a new second
        _check(jf, via_tuple, x0)
        _check(jf, via_tuple, x0)
    finally:
        ARGS = saved


class Model:
    def __init__(self):
        self.layers = [(np.arange(3.0), np.ones(3))]
        self.shared = self.layers[0][0]

    @adjit.jit
    def __call__(self, v):
        w, b = self.layers[0]
        return v * w + b if w is self.shared else v - b


def test_method_self_containers_are_live_and_keep_identity():
    m = Model()
    want = lambda v: Model.__call__.__wrapped__(m, v)  # noqa: E731
    _check(m, want, x0)
    m.layers[0][1][:] = 4.0
    _check(m, want, x0)
    m.layers[0] = (m.layers[0][0], np.full(3, -1.0))
    _check(m, want, x0)
    m.shared = np.arange(3.0)   # equal values, another object: the else branch
    _check(m, want, x0)


PARAMS: dict = {}


@adjit.jit
def step_params(v):  # jitted while PARAMS is empty, filled before the first call
    return v * PARAMS["w"] + (1.0 if PARAMS["w"] is PARAMS["alias"] else 0.0)


def test_container_filled_after_jit_and_a_global_defined_later():
    PARAMS.update(w=np.arange(3.0), alias=None)
    want = step_params.__wrapped__
    _check(step_params, want, x0)
    PARAMS["alias"] = PARAMS["w"]
    _check(step_params, want, x0)
    PARAMS["w"] = np.full(3, 9.0)
    _check(step_params, want, x0)
    glob = {"np": np}
    exec("def f(v):\n    return v * LATER[0]\n", glob)
    jf = adjit.jit(glob["f"])  # LATER unbound when jitted
    glob["LATER"] = [np.arange(3.0)]
    _check(jf, glob["f"], x0)
    glob["LATER"][0] = np.ones(3)
    for _ in range(3):
        _check(jf, glob["f"], x0)


def test_a_list_without_arrays_is_the_functions_own():
    log = []

    def f(v):
        log.append("traced")
        return v * 2.0
    jf = adjit.jit(f)
    jf(x0)
    assert log == ["traced"]  # the append reached the caller's list (no copy)


def test_tensor_front_one_tensor_twice_as_in_pytorch():
    torch = require("torch")

    def f(u, v, w):
        return u * 2.0 + w[0] if u is v and w[0] is u else u - v

    def run(lib, fn):
        a = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
        b = lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64)
        outs = [fn(a, a, [a]), fn(a, b, [a]), fn(a, a, (b,))]
        sum(o.sum() for o in outs).backward()
        return [o.detach().numpy() for o in outs] + [a.grad.numpy()]
    jf = adjit.jit(f)
    for got, want in zip(run(adjit, jf), run(torch, f)):
        np.testing.assert_allclose(got, want, rtol=1e-12)
