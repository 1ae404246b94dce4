"""Programs in the spirit of four of HIPS autograd's examples (rnn, lstm, fluidsim,
define_gradient; issue 15 "Done when"), written here from scratch: plain `import numpy as np`
code, differentiated by adjit (and compiled by adjit.jit) and by HIPS autograd running the same
code with `autograd.numpy`; values and gradients agree to 1e-6."""
from __future__ import annotations

import numpy as np
import pytest

import adjit

from peers import require


def _logsumexp(np_, x, axis):
    m = np_.max(x, axis=axis, keepdims=True)
    return m + np_.log(np_.sum(np_.exp(x - m), axis=axis, keepdims=True))


def _sigmoid(np_, x):
    return 0.5 * (np_.tanh(0.5 * x) + 1.0)


# --- a recurrent net predicting the next symbol of one-hot sequences (rnn) ---------------------
def _rnn(np_, params, seqs):
    """seqs: (time, batch, symbols) one-hot. The initial hidden state is a parameter row,
    repeated for every sequence of the batch (np.repeat); log-likelihood via logsumexp."""
    steps, batch, _ = seqs.shape
    h = np_.repeat(params["h0"], batch, axis=0)
    loglik = 0.0
    for t in range(steps - 1):
        h = np_.tanh(np_.concatenate((seqs[t], h), axis=1) @ params["W_h"] + params["b_h"])
        logits = h @ params["W_o"] + params["b_o"]
        logp = logits - _logsumexp(np_, logits, axis=1)
        loglik = loglik + np_.sum(logp * seqs[t + 1])
    return -loglik / (steps * batch)


# --- a long short-term memory over the same data (lstm) ---------------------------------------
def _lstm(np_, params, seqs):
    steps, batch, _ = seqs.shape
    h = np_.repeat(params["h0"], batch, axis=0)
    c = np_.repeat(params["c0"], batch, axis=0)
    nh = h.shape[1]
    loglik = 0.0
    for t in range(steps - 1):
        z = np_.concatenate((seqs[t], h), axis=1) @ params["W"] + params["b"]
        i, f = _sigmoid(np_, z[:, :nh]), _sigmoid(np_, z[:, nh:2 * nh])
        o, g = _sigmoid(np_, z[:, 2 * nh:3 * nh]), np_.tanh(z[:, 3 * nh:])
        c = f * c + i * g
        h = o * np_.tanh(c)
        logits = h @ params["W_o"]
        logp = logits - _logsumexp(np_, logits, axis=1)
        loglik = loglik + np_.sum(logp * seqs[t + 1])
    return -loglik / (steps * batch)


def _seqs(rng, steps=6, batch=3, symbols=4):
    return np.eye(symbols)[rng.integers(0, symbols, (steps, batch))]


def _rnn_params(rng, symbols=4, hidden=5):
    return {"h0": rng.normal(size=(1, hidden)) * 0.3,
            "W_h": rng.normal(size=(symbols + hidden, hidden)) * 0.4,
            "b_h": rng.normal(size=hidden) * 0.1,
            "W_o": rng.normal(size=(hidden, symbols)) * 0.4, "b_o": rng.normal(size=symbols) * .1}


def _lstm_params(rng, symbols=4, hidden=5):
    return {"h0": rng.normal(size=(1, hidden)) * 0.3, "c0": rng.normal(size=(1, hidden)) * 0.3,
            "W": rng.normal(size=(symbols + hidden, 4 * hidden)) * 0.4,
            "b": rng.normal(size=4 * hidden) * 0.1,
            "W_o": rng.normal(size=(hidden, symbols)) * 0.4}


# --- a semi-Lagrangian fluid on a periodic grid (fluidsim) ------------------------------------
def _advect(np_, f, vx, vy):
    """Move f along (vx, vy) for one step: sample f where each cell's fluid came from,
    bilinearly between the four surrounding cells (floor, remainder, integer gathers)."""
    n = f.shape[0]
    rows, cols = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    src_r, src_c = rows - vy, cols - vx
    r0, c0 = np_.floor(src_r), np_.floor(src_c)
    wr, wc = src_r - r0, src_c - c0
    r0i, c0i = np_.remainder(r0, n).astype(int), np_.remainder(c0, n).astype(int)
    r1i, c1i = np_.remainder(r0i + 1, n), np_.remainder(c0i + 1, n)
    return ((1 - wr) * ((1 - wc) * f[r0i, c0i] + wc * f[r0i, c1i]) +
            wr * ((1 - wc) * f[r1i, c0i] + wc * f[r1i, c1i]))


def _project(np_, vx, vy, iters=4):
    """Make the velocity (nearly) divergence-free: Jacobi iterations for the pressure, with
    np.roll for the periodic neighbours."""
    div = -0.5 * (np_.roll(vx, -1, axis=1) - np_.roll(vx, 1, axis=1) +
                  np_.roll(vy, -1, axis=0) - np_.roll(vy, 1, axis=0))
    p = np_.zeros_like(div)
    for _ in range(iters):
        p = (div + np_.roll(p, 1, axis=0) + np_.roll(p, -1, axis=0) +
             np_.roll(p, 1, axis=1) + np_.roll(p, -1, axis=1)) / 4.0
    vx = vx - 0.5 * (np_.roll(p, -1, axis=1) - np_.roll(p, 1, axis=1))
    vy = vy - 0.5 * (np_.roll(p, -1, axis=0) - np_.roll(p, 1, axis=0))
    return vx, vy


def _fluid(np_, v0, smoke, target):
    n = smoke.shape[0]
    vx, vy = v0[:n * n].reshape(n, n), v0[n * n:].reshape(n, n)
    for _ in range(3):
        vx, vy = _project(np_, vx, vy)
        vx, vy = _advect(np_, vx, vx, vy), _advect(np_, vy, vx, vy)
        smoke = _advect(np_, smoke, vx, vy)
    return np_.mean((smoke - target) ** 2)


# --- a function with its own gradient (define_gradient) ---------------------------------------
def _hardclip(x):
    """Clip to [-1, 1]; its hand-written gradient below is a smooth surrogate (a
    straight-through-style rule), so the rule, not the true derivative, must be used."""
    return np.clip(x, -1.0, 1.0)


def _surrogate_grad(x, g):
    return g * (1.0 - np.tanh(x) ** 2)


def _custom_program(np_, clip, w, x):
    h = clip(x @ w[:3] + w[3])
    return np_.sum(np_.log1p(h ** 2) + 0.5 * h)


def _adjit_clip():
    f = adjit.custom_vjp(_hardclip)
    f.defvjp(lambda x: (_hardclip(x), x), lambda x, g: (_surrogate_grad(x, g),))
    return f


def _autograd_clip():
    from autograd.extend import defvjp, primitive
    import autograd.numpy as agnp
    f = primitive(lambda x: agnp.clip(x, -1.0, 1.0))
    defvjp(f, lambda ans, x: lambda g: g * (1.0 - agnp.tanh(x) ** 2))
    return f


def _case(name, rng):
    if name == "rnn":
        return _rnn, (_rnn_params(rng), _seqs(rng))
    if name == "lstm":
        return _lstm, (_lstm_params(rng), _seqs(rng))
    n = 6
    rows, cols = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    smoke = np.exp(-((rows - 2.0) ** 2 + (cols - 3.0) ** 2) / 3.0)
    return _fluid, (rng.normal(size=2 * n * n) * 0.4, smoke, np.roll(smoke, 1, axis=1))


def _close(got, want):
    if isinstance(want, dict):
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-6, atol=1e-9, err_msg=k)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", ["rnn", "lstm", "fluidsim"])
def test_example_program_matches_autograd(name):
    ag = require("autograd")
    import autograd.numpy as agnp
    f, args = _case(name, np.random.default_rng(11))
    v, g = adjit.value_and_grad(lambda *a: f(np, *a))(*args)
    wv, wg = ag.value_and_grad(lambda *a: f(agnp, *a))(*args)
    assert v == pytest.approx(wv, rel=1e-6)
    _close(g, wg)
    _close(adjit.jit(adjit.grad(lambda *a: f(np, *a)))(*args), wg)


def test_define_gradient_matches_autograd():
    ag = require("autograd")
    import autograd.numpy as agnp
    rng = np.random.default_rng(5)
    w, x = rng.normal(size=4), rng.normal(size=(7, 3)) * 2
    mine, theirs = _adjit_clip(), _autograd_clip()
    v, g = adjit.value_and_grad(lambda a: _custom_program(np, mine, a, x))(w)
    wv, wg = ag.value_and_grad(lambda a: _custom_program(agnp, theirs, a, x))(w)
    assert v == pytest.approx(wv, rel=1e-6)
    _close(g, wg)
    _close(adjit.jit(adjit.grad(lambda a: _custom_program(np, mine, a, x)))(w), wg)
    # the hand-written rule is what both use: it differs from the function's true derivative
    true = adjit.grad(lambda a: _custom_program(np, _hardclip, a, x))(w)
    assert not np.allclose(true, wg, rtol=1e-3)


def test_plain_ndarray_indexed_by_traced_integers_guards_the_indices():
    """fluidsim's first advection indexes the plain initial smoke with integer arrays computed
    from traced coordinates: the indices carry no derivative, so NumPy may convert them; a
    jitted replay with other indices re-traces (a guard on their value) instead of reusing."""
    table = np.array([10.0, 20.0, 30.0, 40.0])

    def f(x):
        return np.sum(table[np.remainder(np.floor(x * 3), 4).astype(int)] * x)

    def want(x):
        return table[np.remainder(np.floor(x * 3), 4).astype(int)]
    x, y = np.array([0.1, 0.5, 0.9, 0.3]), np.array([0.7, 0.5, 0.1, 1.3])
    np.testing.assert_array_equal(adjit.grad(f)(x), want(x))
    jf = adjit.jit(adjit.grad(f))
    for v in (x, x, y, x):
        np.testing.assert_array_equal(jf(v), want(v))
    with pytest.raises(TypeError, match="cannot become a NumPy ndarray"):  # floats still refused
        adjit.grad(lambda v: np.sum(table[:2] * np.asarray(v)[:2]))(x)
