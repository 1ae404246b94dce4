"""A long eager training loop must not leak: each step's graph (nodes, grad_fns, the cached
backward) has to be freed once the step's tensors are gone."""
from __future__ import annotations

import gc
import os
import resource
import time

import adjit as torch


def _rss_bytes():
    """Current resident set size (Linux /proc), else the peak from getrusage."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _train(steps, w, b, x, y, lr=0.01):
    for _ in range(steps):
        loss = ((x * w + b - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            w -= lr * w.grad
            b -= lr * b.grad
        w.grad.zero_()
        b.grad.zero_()
    return loss


def test_training_loop_rss_is_flat():
    w = torch.tensor(0.5, requires_grad=True)
    b = torch.tensor(0.0, requires_grad=True)
    x = torch.tensor([1., 2., 3., 4.])
    y = 2 * x + 1
    _train(500, w, b, x, y)  # warm up: caches, first-use allocations
    gc.collect()
    before = _rss_bytes()
    start = time.perf_counter()
    loss = _train(10_000, w, b, x, y)
    elapsed = time.perf_counter() - start
    gc.collect()
    grown = _rss_bytes() - before
    assert loss.item() < 1e-3, "the loop should have fit the line"
    # a leak of even one small array per step (~100 bytes) would show as > 1 MB here
    assert grown < 2 * 2 ** 20, f"RSS grew by {grown / 2 ** 20:.1f} MiB over 10,000 steps"
    assert elapsed < 20, f"10,000 eager steps took {elapsed:.1f} s"


def test_graph_objects_are_released():
    import weakref
    w = torch.tensor(0.5, requires_grad=True)
    x = torch.tensor([1., 2.])
    loss = (x * w).sum()
    fn = weakref.ref(loss.grad_fn)
    loss.backward()
    del loss
    gc.collect()
    assert fn() is None, "the grad_fn of a dropped loss must not be kept alive"
