"""adjit.autograd.gradcheck / gradgradcheck, adjit.inference_mode and anomaly detection
(set_detect_anomaly / detect_anomaly) against PyTorch 2.13: verdicts, GradcheckError messages,
inference-tensor flags and errors, the NaN-in-backward error and its forward-stack warning
(issue 19)."""
import warnings

import pytest

import adjit
from peers import require, same_as_torch

torch = require("torch")


def _msg(s):
    return s.replace("torch.", "adjit.")


def both(scenario):
    """same_as_torch, with torch's module name in messages read as adjit's."""
    def run(T):
        try:
            return scenario(T)
        except Exception as e:  # noqa: BLE001
            return (type(e).__name__, _msg(str(e)))
    return same_as_torch(run)


def X(T):
    return T.tensor([1.0, 2.0], dtype=T.float64, requires_grad=True)


def functions(T):
    class WrongSquare(T.autograd.Function):
        """backward is wrong by a factor 1.5"""
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 2

        @staticmethod
        def backward(ctx, g):
            x, = ctx.saved_tensors
            return g * 3 * x

    class OnceCube(T.autograd.Function):
        """first derivative right, second wrong (x.detach() in backward)"""
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            x, = ctx.saved_tensors
            return g * 3 * x * x.detach()
    return WrongSquare, OnceCube


GRADCHECK = {
    "two_outputs": lambda T: T.autograd.gradcheck(lambda a, b: (a * b, a.sin()),
                                                  (X(T), X(T)[:1].detach().requires_grad_())),
    "wrong": lambda T: T.autograd.gradcheck(functions(T)[0].apply, (X(T),)),
    "wrong_no_raise": lambda T: T.autograd.gradcheck(functions(T)[0].apply, (X(T),),
                                                     raise_exception=False),
    "wrong_tolerant": lambda T: T.autograd.gradcheck(functions(T)[0].apply, (X(T),), rtol=0.6),
    "no_input_requires_grad": lambda T: T.autograd.gradcheck(
        lambda a: a * 2, (T.ones(2, dtype=T.float64),)),
    "non_tensor_input": lambda T: T.autograd.gradcheck(lambda a, b: a * b, (X(T), 2.0)),
    "constant_output": lambda T: T.autograd.gradcheck(lambda a: T.ones(2, dtype=T.float64),
                                                      (X(T),)),
    "detached_output": lambda T: T.autograd.gradcheck(lambda a: a.detach() * 2, (X(T),)),
    "fast_mode": lambda T: T.autograd.gradcheck(lambda a: a.exp(), X(T), fast_mode=True),
    "gradgrad": lambda T: T.autograd.gradgradcheck(lambda a: a.sin() * a, (X(T),)),
    "gradgrad_wrong": lambda T: T.autograd.gradgradcheck(functions(T)[1].apply, (X(T),),
                                                         T.ones(2, dtype=T.float64)),
    "gradgrad_wrong_no_raise": lambda T: T.autograd.gradgradcheck(
        functions(T)[1].apply, (X(T),), raise_exception=False),
    "gradcheck_first_order_ok": lambda T: T.autograd.gradcheck(functions(T)[1].apply, (X(T),)),
}


@pytest.mark.parametrize("case", sorted(GRADCHECK))
def test_gradcheck_as_torch(case):
    both(GRADCHECK[case])


def test_gradcheck_float32_warning_and_error_type():
    for T in (adjit, torch):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            T.autograd.gradcheck(lambda a: a * 2, (T.ones(2, requires_grad=True),),
                                 raise_exception=False)
        msgs = [str(x.message) for x in w if "double precision" in str(x.message)]
        assert msgs == ["Input #0 requires gradient and is not a double precision floating "
                        "point or complex. This check will likely fail if all the inputs are "
                        "not of double precision floating point or complex. "]
    with pytest.raises(RuntimeError):  # GradcheckError is a RuntimeError, as in PyTorch
        adjit.autograd.gradcheck(functions(adjit)[0].apply, (X(adjit),))
    with pytest.raises(NotImplementedError, match="check_forward_ad"):
        adjit.autograd.gradcheck(lambda a: a, (X(adjit),), check_forward_ad=True)


# ------------------------------------------------------------------ inference_mode
def _inference_obs(T):
    obs = []
    w = T.ones(2, requires_grad=True)
    with T.inference_mode():
        x = T.ones(2) * 3
        y = w * 2
        obs += [x.requires_grad, x.is_inference(), y.requires_grad, y.is_inference(),
                y.is_leaf, y.grad_fn is None, w.is_inference(), T.is_inference_mode_enabled(),
                T.is_grad_enabled()]
        x.add_(1)  # allowed inside
    obs += [T.is_inference_mode_enabled(), T.is_grad_enabled(), x.tolist()]

    def attempt(f):
        try:
            r = f()
            obs.append(r if not isinstance(r, T.Tensor) else ("tensor", r.tolist()))
        except Exception as e:  # noqa: BLE001
            obs.append((type(e).__name__, str(e)))
    attempt(lambda: (x * w).sum())  # mul saves x for backward
    attempt(lambda: (x + w).sum().requires_grad)  # add saves nothing
    attempt(lambda: T.autograd.grad((x.sin() * w).sum(), w)[0].tolist())
    attempt(lambda: x.exp())
    attempt(lambda: x.requires_grad_())
    attempt(lambda: x.add_(1) and None)
    attempt(lambda: x.clone().is_inference())
    attempt(lambda: (x * 2).is_inference())
    attempt(lambda: x.view(2).is_inference())
    with T.inference_mode(False):
        obs += [T.is_inference_mode_enabled(), T.ones(1).is_inference()]
    with T.no_grad():
        obs.append(T.ones(1).is_inference())

    @T.inference_mode()
    def f(a):
        return a * 2

    @T.inference_mode
    def g(a):
        return a * 2
    obs += [f(w).requires_grad, f(w).is_inference(), g(w).requires_grad, g(w).is_inference(),
            T.is_inference_mode_enabled()]
    return obs


def test_inference_mode_as_torch():
    same_as_torch(_inference_obs)


# ------------------------------------------------------------------ anomaly detection
def _anomaly(T, build):
    """(error, the forward-stack warning's text without PyTorch's internal tail)."""
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        with T.autograd.detect_anomaly():
            loss = build(T)
            try:
                loss.backward()
                err = None
            except RuntimeError as e:
                err = str(e)
    texts = [str(x.message).split(" (Triggered internally")[0] for x in w]
    return err, texts


def _sqrt_at_zero(T):
    x = T.tensor([0.0, 1.0], requires_grad=True)
    y = x.sqrt()
    return (y * 0).sum()


def _div_zero(T):
    a = T.tensor([0.0], requires_grad=True)
    b = a / a
    return b.sum()


def test_anomaly_nan_in_backward_as_torch():
    mine, ref = _anomaly(adjit, _sqrt_at_zero), _anomaly(torch, _sqrt_at_zero)
    assert mine[0] == ref[0] == "Function 'SqrtBackward0' returned nan values in its 0th output."
    assert mine[1] == ref[1]  # "Anomaly Detection has been enabled...", then the forward stack
    assert "    y = x.sqrt()\n" in mine[1][1]
    mine, ref = _anomaly(adjit, _div_zero), _anomaly(torch, _div_zero)
    assert mine[0] == ref[0] == "Function 'DivBackward0' returned nan values in its 1th output."
    assert mine[1][1].endswith('in _div_zero\n    b = a / a\n')
    assert ref[1][1].endswith('in _div_zero\n    b = a / a\n')


def test_anomaly_switches_as_torch():
    def obs(T):
        r = [T.is_anomaly_enabled(), T.is_anomaly_check_nan_enabled()]
        T.autograd.set_detect_anomaly(True, check_nan=False)
        r += [T.is_anomaly_enabled(), T.is_anomaly_check_nan_enabled()]
        x = T.tensor([0.0], requires_grad=True)
        (x.sqrt() * 0).sum().backward()  # no check: nan silently, as PyTorch
        r.append(x.grad.isnan().tolist())
        T.autograd.set_detect_anomaly(False)
        with T.autograd.set_detect_anomaly(True):
            r.append(T.is_anomaly_enabled())
        r.append(T.is_anomaly_enabled())
        return r
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        same_as_torch(obs)
