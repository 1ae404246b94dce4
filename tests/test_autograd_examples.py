"""Programs in the spirit of HIPS autograd's examples, written here from scratch: plain
`import numpy as np` code, differentiated by adjit (and compiled by adjit.jit) and by HIPS
autograd running the same code with `autograd.numpy`; values and gradients agree to 1e-6.
rnn, lstm, fluidsim, define_gradient (issue 15); gaussian_process, gmm, gplvm,
deep_gaussian_process, bayesian_neural_net (issue 16: np.linalg, scipy.stats, broadcasting
einsum), whose shortened optimisations print autograd's numbers."""
from __future__ import annotations

import itertools

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


# =============================================================================================
# Five of HIPS autograd's example programs that need np.linalg and scipy.stats (issue 16):
# gaussian_process, gmm, gplvm, deep_gaussian_process and bayesian_neural_net. Each model is
# written once below as a function of a NumPy-like module `np_` and a SciPy-like module `sp`
# (`sp.stats.norm`, `sp.stats.multivariate_normal`, `sp.special.logsumexp`): run with
# autograd.numpy/autograd.scipy and differentiated by autograd, and with plain NumPy plus
# adjit.scipy, differentiated by adjit (eagerly, under adjit.jit, and as native code). The
# gradients agree, and so do the numbers the programs print while they optimise (the same
# optimiser, scipy.optimize.minimize or autograd.misc.optimizers.adam, on both).
# =============================================================================================
def _libs(which):
    """(numpy-like, scipy-like) of `which` ("autograd" or "adjit")."""
    from types import SimpleNamespace
    if which == "autograd":
        require("autograd")
        import autograd.numpy as agnp
        import autograd.scipy.special as ags
        import autograd.scipy.stats as agst
        return agnp, SimpleNamespace(stats=agst, special=ags)
    import adjit.scipy.special as ajs
    import adjit.scipy.stats as ajst
    return np, SimpleNamespace(stats=ajst, special=ajs)


# --- Gaussian process regression with an RBF kernel (gaussian_process) ------------------------
def _gp_parts(np_, params):
    """params = (prior mean, log noise, log output scale, log lengthscale per input dim)."""
    return params[0], params[2:], np_.exp(params[1]) + 1e-4


def _rbf(np_, kp, x, xp):
    scale, ls = np_.exp(kp[0]), np_.exp(kp[1:])
    diff = np_.expand_dims(x / ls, 1) - np_.expand_dims(xp / ls, 0)
    return scale * np_.exp(-0.5 * np_.sum(diff ** 2, axis=2))


def _gp_loglik(np_, sp, params, x, y):
    """log N(y; mean, K(x, x) + noise I): scipy.stats' multivariate normal, as the example."""
    mean, kp, noise = _gp_parts(np_, params)
    cov = _rbf(np_, kp, x, x) + noise * np_.eye(len(y))
    return sp.stats.multivariate_normal.logpdf(y, mean * np_.ones(len(y)), cov)


def _gp_loglik_closed(np_, params, x, y):
    """The same density written out: a solve and slogdet (what users write by hand)."""
    mean, kp, noise = _gp_parts(np_, params)
    cov = _rbf(np_, kp, x, x) + noise * np_.eye(len(y))
    r = y - mean
    _sign, logdet = np_.linalg.slogdet(cov)
    return -0.5 * (np_.dot(r, np_.linalg.solve(cov, r)) + logdet + len(y) * np.log(2 * np.pi))


def _gp_predict(np_, params, x, y, xs):
    """Posterior mean and covariance of the latent function at xs (two solves)."""
    mean, kp, noise = _gp_parts(np_, params)
    k_ff, k_yf = _rbf(np_, kp, xs, xs), _rbf(np_, kp, x, xs)
    k_yy = _rbf(np_, kp, x, x) + noise * np_.eye(len(y))
    pred_mean = mean + np_.dot(np_.linalg.solve(k_yy, k_yf).T, y - mean)
    pred_cov = k_ff - np_.dot(np_.linalg.solve(k_yy, k_yf).T, k_yf)
    return pred_mean, pred_cov


def _gp_data(n=20):
    """Two clusters of 1-d inputs, a noisy cosine (toy regression with a gap)."""
    rng = np.random.default_rng(0)
    t = np.concatenate([np.linspace(0.0, 3.0, n // 2), np.linspace(6.0, 8.0, n // 2)])
    y = (np.cos(t) + 0.1 * rng.standard_normal(n)) / 2.0
    return ((t - 4.0) / 2.0).reshape(n, 1), y


def _gp_objective(np_, sp):
    x, y = _gp_data()
    return lambda p: -_gp_loglik(np_, sp, p, x, y), 0.1 * np.random.default_rng(1).normal(
        size=4)


# --- GP latent-variable model (gplvm) ---------------------------------------------------------
def _arms(per_arm=10, arms=3):
    """2-d points along three curved arms (a small pinwheel-like data set)."""
    rng = np.random.default_rng(2)
    r = 1.0 + 0.3 * rng.standard_normal(arms * per_arm)
    a = (np.repeat(np.arange(arms), per_arm) * 2 * np.pi / arms + 0.4 * np.exp(r)
         + 0.05 * rng.standard_normal(arms * per_arm))
    return np.stack([r * np.cos(a), r * np.sin(a)], axis=1)


def _gplvm_objective(np_, sp, latent_dim=2):
    data = _arms()
    n, d = data.shape
    per_gp = latent_dim + 3

    def objective(params):
        gp_params = np_.reshape(params[:d * per_gp], (d, per_gp))
        latents = np_.reshape(params[d * per_gp:], (n, latent_dim))
        gp_ll = sum(_gp_loglik(np_, sp, gp_params[i], latents, data[:, i]) for i in range(d))
        return -gp_ll - np_.sum(sp.stats.norm.logpdf(latents))
    return objective, 0.1 * np.random.default_rng(3).normal(size=d * per_gp + n * latent_dim)


# --- a two-layer deep GP: x -> hidden values (parameters) -> y (deep_gaussian_process) ---------
def _deep_gp_objective(np_, sp, n=16):
    x = np.linspace(-2.0, 2.0, n).reshape(n, 1)
    y = np.sign(x[:, 0]) + 0.1 * np.random.default_rng(4).standard_normal(n)

    def objective(params):
        p1, p2, h = params[:4], params[4:8], params[8:]
        return -(_gp_loglik(np_, sp, p1, x, h) + _gp_loglik(np_, sp, p2, np_.atleast_2d(h).T, y))
    return objective, 0.1 * np.random.default_rng(5).normal(size=8 + n)


# --- Gaussian mixture fitted by maximum likelihood (gmm) --------------------------------------
def _gmm_loglik(np_, sp, params, data):
    """params: a dict of log proportions (k,), means (k, d) and covariance square roots
    (k, d, d); one component at a time, iterating over the (traced) arrays with zip."""
    log_props = params["log proportions"] - sp.special.logsumexp(params["log proportions"])
    lls = [lp + sp.stats.multivariate_normal.logpdf(data, mean, np_.dot(root.T, root))
           for lp, mean, root in zip(log_props, params["means"], params["lower triangles"])]
    return np_.sum(sp.special.logsumexp(np_.vstack(lls), axis=0))


def _gmm_unflatten(flat, k=3, d=2):
    return {"log proportions": flat[:k], "means": flat[k:k + k * d].reshape((k, d)),
            "lower triangles": flat[k + k * d:].reshape((k, d, d))}


def _gmm_objective(np_, sp, k=3, d=2):
    data = _arms(per_arm=20)
    rng = np.random.default_rng(6)
    init = np.concatenate([0.1 * rng.normal(size=k), 0.1 * rng.normal(size=k * d),
                           (np.zeros((k, d, d)) + np.eye(d)).ravel()])
    return lambda flat: -_gmm_loglik(np_, sp, _gmm_unflatten(flat, k, d), data), init


# --- Bayesian neural net by black-box variational inference (bayesian_neural_net) -------------
_BNN_LAYERS = [1, 10, 10, 1]
_BNN_WEIGHTS = sum((m + 1) * n for m, n in itertools.pairwise(_BNN_LAYERS))
_BNN_SAMPLES = 8


def _bnn_predict(np_, weights, inputs):
    """An MLP for each of the M weight samples at once: weights (M, W), inputs (N, D) ->
    (M, N, out). The inputs get a leading size-1 axis that the first einsum broadcasts against
    the M weight samples (the example's `mnd,mdo->mno`)."""
    m = len(weights)
    inputs = np_.expand_dims(inputs, 0)
    for i, o in itertools.pairwise(_BNN_LAYERS):
        w = weights[:, :i * o].reshape((m, i, o))
        b = weights[:, i * o:(i + 1) * o].reshape((m, 1, o))
        weights = weights[:, (i + 1) * o:]
        outputs = np_.einsum("mnd,mdo->mno", inputs, w) + b
        inputs = np_.exp(-outputs ** 2)
    return outputs


def _bnn_data(n=20):
    rng = np.random.default_rng(7)
    t = np.concatenate([np.linspace(0.0, 2.0, n // 2), np.linspace(6.0, 8.0, n // 2)])
    y = np.cos(t) + 0.1 * rng.standard_normal(n)
    return ((t - 4.0) / 4.0).reshape(n, 1), y.reshape(n, 1)


def _bnn_objective(np_, sp):
    """Negative evidence lower bound of a diagonal Gaussian over the weights, estimated with
    the reparameterised samples mean + eps * exp(log_std) (eps an argument: the noise)."""
    x, y = _bnn_data()
    nw = _BNN_WEIGHTS

    def logprob(weights):
        log_prior = -0.1 * np_.sum(weights ** 2, axis=1)
        preds = _bnn_predict(np_, weights, x)
        return log_prior - np_.sum((preds - y) ** 2, axis=1)[:, 0] / 0.01

    def objective(params, eps):
        mean, log_std = params[:nw], params[nw:]
        entropy = 0.5 * nw * (1.0 + np.log(2 * np.pi)) + np_.sum(log_std)
        return -(entropy + np_.mean(logprob(eps * np_.exp(log_std) + mean)))
    init = np.concatenate([np.random.default_rng(8).normal(size=nw), -5.0 * np.ones(nw)])
    return objective, init


_EXAMPLES = {"gaussian_process": _gp_objective, "gplvm": _gplvm_objective,
             "deep_gaussian_process": _deep_gp_objective, "gmm": _gmm_objective,
             "bayesian_neural_net": _bnn_objective}


def _example_args(name, init):
    if name == "bayesian_neural_net":
        return init, np.random.default_rng(9).standard_normal((_BNN_SAMPLES, _BNN_WEIGHTS))
    return (init,)


def _adjit_value_and_grad(f, how):
    vg = adjit.value_and_grad(f)
    return vg if how == "eager" else adjit.jit(vg)


@pytest.mark.parametrize("how", ["eager", "jit", "native"])
@pytest.mark.parametrize("name", list(_EXAMPLES))
def test_example_model_value_and_gradient_match_autograd(name, how, request):
    if how == "native":
        request.getfixturevalue("native_tier")
    ag = require("autograd")
    want_f, init = _EXAMPLES[name](*_libs("autograd"))
    f, _ = _EXAMPLES[name](*_libs("adjit"))
    args = _example_args(name, init)
    wv, wg = ag.value_and_grad(want_f)(*args)
    vg = _adjit_value_and_grad(f, how)
    grads = [adjit.grad(f)] if how == "eager" else []
    for _ in range(2 if how == "eager" else 3):  # jit: the first call and the cached replays
        v, g = vg(*args)
        assert v == pytest.approx(wv, rel=1e-10)
        grads.append(lambda *a, g=g: g)
    for gf in grads:
        np.testing.assert_allclose(gf(*args), wg, rtol=1e-8, atol=1e-10 * np.max(np.abs(wg)))
    if how == "native":
        assert vg.stats()["compile_seconds"] > 0
    assert float(f(*args)) == pytest.approx(wv, rel=1e-10)  # plain NumPy, nothing traced


def _hvp(lib, f, how="eager"):
    """Hessian-vector product: autograd's hessian_vector_product (reverse over reverse);
    adjit's forward over reverse (jvp of grad)."""
    if lib == "autograd":
        from autograd import hessian_vector_product
        return hessian_vector_product(f)

    def hvp(x, v):
        return adjit.jvp(adjit.grad(f), (x,), (v,))[1]
    return hvp if how == "eager" else adjit.jit(hvp)


def _run_example(name, lib, how="eager"):
    """The example's optimisation, shortened: the numbers its callback prints at each
    iteration (log likelihood / lower bound, computed by calling the model on plain arrays)
    and the final parameters."""
    f, init = _EXAMPLES[name](*_libs(lib))
    from autograd.misc.optimizers import adam
    from scipy.optimize import minimize
    if lib == "autograd":
        import autograd
        vg = autograd.value_and_grad(f)
    else:
        vg = _adjit_value_and_grad(f, how)
    printed = []
    if name == "bayesian_neural_net":
        # a stochastic objective: the gradient and the callback's estimate each draw their
        # own noise, from one stream shared in the same order by both runs
        rs = np.random.default_rng(10)

        def noise():
            return rs.standard_normal((_BNN_SAMPLES, _BNN_WEIGHTS))
        x = adam(lambda p, t: vg(p, noise())[1], init, step_size=0.1, num_iters=25,
                 callback=lambda p, t, g: printed.append(-float(f(p, noise()))))
        return np.array(printed), x
    callback = lambda p: printed.append(-float(f(p)))
    if name == "gmm":  # Newton-CG with the Hessian-vector product, as the example
        res = minimize(lambda p: float(vg(p)[0]), init, jac=lambda p: np.asarray(vg(p)[1]),
                       hessp=_hvp(lib, f, how), method="Newton-CG", callback=callback,
                       options={"maxiter": 6})
    else:
        res = minimize(vg, init, jac=True, method="CG", callback=callback,
                       options={"maxiter": 12})
    return np.array(printed), res.x


_REFERENCE_RUNS = {}


@pytest.mark.parametrize("how", ["eager", "jit", "native"])
@pytest.mark.parametrize("name", list(_EXAMPLES))
def test_example_optimisation_prints_autograds_numbers(name, how, request):
    require("autograd")
    if how == "native":
        request.getfixturevalue("native_tier")
    if name not in _REFERENCE_RUNS:
        _REFERENCE_RUNS[name] = _run_example(name, "autograd")
    want, want_x = _REFERENCE_RUNS[name]
    got, x = _run_example(name, "adjit", how)
    assert len(want) >= 6 and len(got) == len(want)
    assert not np.allclose(want[-1], want[0], rtol=1e-3)  # the optimiser moved
    np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(x, want_x, rtol=1e-6, atol=1e-8)


def test_gaussian_process_prediction_and_closed_form_density_match_autograd():
    """The example's posterior (two np.linalg.solve), its gradient, and the marginal
    likelihood written with solve and slogdet, against autograd and the scipy.stats form."""
    ag = require("autograd")
    agnp, agsp = _libs("autograd")
    x, y = _gp_data()
    xs = np.linspace(-3.5, 3.5, 9).reshape(9, 1)
    params = 0.1 * np.random.default_rng(1).normal(size=4)

    def summary(np_, p):
        m, c = _gp_predict(np_, p, x, y, xs)
        return np_.sum(m ** 2) + np_.sum(np_.sqrt(np_.diag(c)))
    for got, want in zip(adjit.jit(lambda p: _gp_predict(np, p, x, y, xs))(params),
                         _gp_predict(agnp, params, x, y, xs)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    wv, wg = ag.value_and_grad(lambda p: summary(agnp, p))(params)
    for vg in (adjit.value_and_grad(lambda p: summary(np, p)),
               adjit.jit(adjit.value_and_grad(lambda p: summary(np, p)))):
        v, g = vg(params)
        assert v == pytest.approx(wv, rel=1e-10)
        np.testing.assert_allclose(g, wg, rtol=1e-8)
    wv, wg = ag.value_and_grad(lambda p: _gp_loglik(agnp, agsp, p, x, y))(params)
    cv, cg = ag.value_and_grad(lambda p: _gp_loglik_closed(agnp, p, x, y))(params)
    v, g = adjit.jit(adjit.value_and_grad(lambda p: _gp_loglik_closed(np, p, x, y)))(params)
    for val, grad in ((cv, cg), (v, g)):
        assert val == pytest.approx(wv, rel=1e-10)
        np.testing.assert_allclose(grad, wg, rtol=1e-8)


def test_gmm_hessian_vector_product_matches_autograd():
    """Newton-CG's hessp: forward over reverse (jvp of grad, eager and jit) and autograd's own
    reverse over reverse (grad of <grad, v>), both against autograd."""
    require("autograd")
    want_f, init = _gmm_objective(*_libs("autograd"))
    f, _ = _gmm_objective(*_libs("adjit"))
    v = np.random.default_rng(11).normal(size=init.shape)
    want = _hvp("autograd", want_f)(init, v)
    got = [_hvp("adjit", f, how)(init, v) for how in ("eager", "jit")]
    got.append(adjit.grad(lambda x: np.dot(adjit.grad(f)(x), v))(init))
    for g in got:
        np.testing.assert_allclose(g, want, rtol=1e-8, atol=1e-10 * np.max(np.abs(want)))


@pytest.mark.parametrize("name", ["gaussian_process", "deep_gaussian_process", "gmm"])
def test_example_model_hessian_matches_autograd(name):
    """Second derivatives through cholesky, inv, logsumexp (the whole Hessian, small models)."""
    ag = require("autograd")
    want_f, init = _EXAMPLES[name](*_libs("autograd"))
    f, _ = _EXAMPLES[name](*_libs("adjit"))
    want = ag.hessian(want_f)(init)
    for h in (adjit.hessian(f), adjit.jit(adjit.hessian(f))):
        np.testing.assert_allclose(h(init), want, rtol=1e-8, atol=1e-10 * np.max(np.abs(want)))


def test_gmm_gradient_with_respect_to_a_dict_of_parameters_matches_autograd():
    """The example differentiates its dict of parameters (and flattens it only for SciPy)."""
    ag = require("autograd")
    agnp, agsp = _libs("autograd")
    _, sp = _libs("adjit")
    data = _arms(per_arm=20)
    _, init = _gmm_objective(np, sp)
    params = {k: np.array(v) for k, v in _gmm_unflatten(init).items()}
    want = ag.grad(lambda p: _gmm_loglik(agnp, agsp, p, data))(params)
    for how in ("eager", "jit"):
        g = _adjit_value_and_grad(lambda p: _gmm_loglik(np, sp, p, data), how)(params)[1]
        assert isinstance(g, dict) and sorted(g) == sorted(want)
        for k in want:
            np.testing.assert_allclose(g[k], want[k], rtol=1e-8, atol=1e-10, err_msg=k)
