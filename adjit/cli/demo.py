"""`adjit demo`: train a small MLP on synthetic data and compare step times (< 30 s).

The model is written once in plain NumPy (`loss`); adjit differentiates and compiles it with
`adjit.jit(adjit.value_and_grad(loss))`. In a build without the transforms it trains through
the eager `adjit.Tensor` tape instead (`loss_tensor`, the same maths with Tensor methods).
"""
from __future__ import annotations

import sys
import time

import numpy as np

N, D, H = 512, 8, 32
LR = 0.3


def data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (N, D)).astype(np.float32)
    y = (np.sin(3 * x[:, :1]) + x[:, 1:2] * x[:, 2:3]).astype(np.float32)
    return x, y


def init(seed=1):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((D, H)) / np.sqrt(D)).astype(np.float32),
            np.zeros(H, np.float32),
            (rng.standard_normal((H, 1)) / np.sqrt(H)).astype(np.float32),
            np.zeros(1, np.float32)]


def loss(params, x, y):
    w1, b1, w2, b2 = params
    h = np.tanh(x @ w1 + b1)
    return np.mean((h @ w2 + b2 - y) ** 2)


def loss_tensor(params, x, y):
    w1, b1, w2, b2 = params
    h = (x @ w1 + b1).tanh()
    return ((h @ w2 + b2 - y) ** 2).mean()


def numpy_value_and_grad(params, x, y):
    """The same gradient, derived by hand: the baseline a compiler has to beat."""
    w1, b1, w2, b2 = params
    h = np.tanh(x @ w1 + b1)
    r = h @ w2 + b2 - y
    val = np.mean(r ** 2)
    dr = (2.0 / r.size) * r
    dh = (dr @ w2.T) * (1 - h * h)
    return val, [x.T @ dh, dh.sum(0), h.T @ dr, dr.sum(0)]


# ------------------------------------------------------------------------------ trainers

def adjit_step_fn():
    """(value_and_grad step, description); the compiled transforms when available."""
    import adjit
    if hasattr(adjit, "jit") and hasattr(adjit, "value_and_grad"):
        return adjit.jit(adjit.value_and_grad(loss)), "adjit.jit(adjit.value_and_grad(loss))"

    def eager(params, x, y):
        ps = [adjit.tensor(p, requires_grad=True) for p in params]
        val = loss_tensor(ps, adjit.from_numpy(x), adjit.from_numpy(y))
        val.backward()
        return val.item(), [p.grad.numpy() for p in ps]
    return eager, "adjit.Tensor eager autograd (the transforms are not in this build)"


def torch_step_fn():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(2)

    def step(params, x, y):
        ps = [torch.from_numpy(p).requires_grad_() for p in params]
        val = loss_tensor(ps, torch.from_numpy(x), torch.from_numpy(y))
        grads = torch.autograd.grad(val, ps)
        return val.item(), [g.numpy() for g in grads]
    return step


def train(step, params, x, y, steps, log=None):
    """Plain SGD; returns (params, losses, per-step seconds excluding the first call)."""
    params = [p.copy() for p in params]
    losses, times = [], []
    for i in range(steps):
        t0 = time.perf_counter()
        val, grads = step(params, x, y)
        times.append(time.perf_counter() - t0)
        params = [p - LR * np.asarray(g, np.float32) for p, g in zip(params, grads)]
        losses.append(float(val))
        if log is not None:
            log(i, float(val))
    return params, losses, times


def _ms(s):
    return f"{s * 1e3:8.3f} ms"


def cache_location():
    try:
        from ..runtime.cache import cache_info
    except ImportError:
        return "no disk cache in this build yet (adjit.runtime.cache)"
    try:
        info = cache_info()
    except Exception as exc:  # noqa: BLE001 - the demo reports, it does not crash
        return f"unavailable ({type(exc).__name__}: {exc})"
    if not isinstance(info, dict):
        return str(info)
    kb = (info.get("size") or 0) / 1024
    return (f"{info.get('path')} ({info.get('disk_entries')} entries, {kb:.1f} KB; this run "
            f"compiled {info.get('compiles', 0)}, loaded {info.get('disk_hits', 0)} from disk)"
            f"; `adjit cache info` / `adjit cache clear`")


def run(steps=200, out=None) -> int:
    out = out or sys.stdout

    def say(text=""):
        out.write(text + "\n")
        out.flush()

    x, y = data()
    p0 = init()
    say(f"adjit demo: an MLP ({D} -> {H} tanh -> 1) fits y = sin(3 x0) + x1 x2 "
        f"on {N} points, {steps} steps of SGD (lr {LR})")
    step, how = adjit_step_fn()
    say(f"gradients by {how}")
    t0 = time.perf_counter()
    v0, g0 = step(p0, x, y)
    first = time.perf_counter() - t0
    say(f"first call (trace + compile): {_ms(first).strip()}")
    vr, gr = numpy_value_and_grad(p0, x, y)
    err = max(float(np.max(np.abs(np.asarray(a) - b)) / (np.max(np.abs(b)) + 1e-12))
              for a, b in zip(g0, gr))
    say(f"agrees with hand-written NumPy gradients: max relative error {err:.1e}")

    every = max(1, steps // 8)
    _, losses, t_adjit = train(step, p0, x, y, steps, log=lambda i, v: (
        say(f"  step {i:4d}  loss {v:.5f}") if i % every == 0 or i == steps - 1 else None))
    _, l_np, t_np = train(numpy_value_and_grad, p0, x, y, steps)
    rows = [("adjit", t_adjit), ("numpy by hand", t_np)]
    tstep = torch_step_fn()
    if tstep is not None:
        rows.append(("torch eager", train(tstep, p0, x, y, steps)[2]))
    else:
        rows.append(("torch eager", None))
    say(f"loss {losses[0]:.4f} -> {losses[-1]:.4f} (NumPy by hand: {l_np[-1]:.4f})")
    say("time per step (median):")
    for name, ts in rows:
        say(f"  {name:<14} {_ms(float(np.median(ts[1:]))) if ts else '  not installed'}")
    say(f"disk cache: {cache_location()}")
    return 0 if losses[-1] < losses[0] else 1
