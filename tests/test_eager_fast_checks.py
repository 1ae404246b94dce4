"""The eager hot paths' cheap checks give the exact answers of the slow ones (issue 14, W7):
the process-wide MODES_ON count in front of the thread-local inference/anomaly modes, and the
cached 0-d literal of `LR * p.grad` under no_grad."""
import threading

import numpy as np
import pytest

import adjit
from adjit.ir.core import MODES_ON, STATE
from peers import same_as_torch


def _in_other_thread(T, entered, release, made):
    def run():
        with T.inference_mode():
            made.append(T.ones(2))
            entered.set()
            release.wait(10)
            made.append(T.ones(2))
    th = threading.Thread(target=run)
    th.start()
    return th


def test_inference_mode_of_another_thread_stays_there():
    def scenario(T):
        entered, release, made = threading.Event(), threading.Event(), []
        th = _in_other_thread(T, entered, release, made)
        entered.wait(10)
        # this thread is not in inference mode: its tensors are normal and can require grad
        a = T.ones(2)
        b = (T.ones(2, requires_grad=True) * 3).sum()
        b.backward()
        # a second thread entering and leaving must not end the first one's mode
        entered2, release2, made2 = threading.Event(), threading.Event(), []
        th2 = _in_other_thread(T, entered2, release2, made2)
        entered2.wait(10)
        release2.set()
        th2.join()
        release.set()
        th.join()
        with T.inference_mode():
            c = T.ones(2)
        d = T.ones(2)
        return (a.is_inference(), b.is_inference(), d.is_inference(), c.is_inference(),
                [m.is_inference() for m in made + made2], T.is_inference_mode_enabled())
    assert same_as_torch(scenario) == ("tuple", False, False, False, True,
                                       ("list", True, True, True, True), False)


def test_modes_count_is_exact():
    assert MODES_ON[0] == 0
    with adjit.inference_mode():
        assert MODES_ON[0] == 1
        with adjit.inference_mode(False):
            assert MODES_ON[0] == 0 and not adjit.ones(1).is_inference()
        assert MODES_ON[0] == 1 and adjit.ones(1).is_inference()
    adjit.autograd.set_detect_anomaly(True)
    adjit.autograd.set_detect_anomaly(True)
    assert MODES_ON[0] == 1
    adjit.autograd.set_detect_anomaly(False)
    assert MODES_ON[0] == 0 and not STATE.anomaly and not STATE.inference


def test_anomaly_mode_of_another_thread():
    from adjit.tracer import grad_fn
    entered, release, fns = threading.Event(), threading.Event(), []

    def run():
        with pytest.warns(UserWarning), adjit.autograd.detect_anomaly():
            entered.set()
            release.wait(10)
            fns.append((adjit.ones(2, requires_grad=True) * 2).grad_fn)
    th = threading.Thread(target=run)
    th.start()
    entered.wait(10)
    here = (adjit.ones(2, requires_grad=True) * 2).grad_fn
    release.set()
    th.join()
    assert here not in grad_fn.FORWARD_STACK  # this thread is not in anomaly mode
    assert fns[0] in grad_fn.FORWARD_STACK
    assert MODES_ON[0] == 0


def test_cached_literal_cannot_be_changed_through_a_result():
    LR = 0.05

    def scenario(T):
        outs = []
        with T.no_grad():
            for dt in (T.float32, T.float64, T.float32):
                for shape in ((), (3,)):
                    x = T.ones(shape, dtype=dt) * 2
                    y = LR * x
                    z = x * LR
                    y.add_(100)          # the results own their storage
                    z.numpy()[...] = -7  # also through NumPy
                    outs += [y, z, LR * x, x * LR, x - LR]
                    p = T.ones(shape, dtype=dt, requires_grad=True)
                    p.grad = T.ones(shape, dtype=dt)
                    p -= LR * p.grad
                    outs.append(p.detach().clone())
        return outs
    same_as_torch(scenario, rtol=1e-6)
    from adjit.tracer import tensor_ops
    lit = tensor_ops._LAST_LIT[2]
    assert lit is not None and not lit.flags.writeable
    with pytest.raises(ValueError):
        lit[...] = 1
