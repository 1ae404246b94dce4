"""adjit.special against torch.special (PyTorch 2.13): values, gradients, grad_fn names,
dtypes (issue 17 item 4)."""
from __future__ import annotations

import numpy as np
import pytest

import adjit
import adjit.special as AS
from peers import require

torch = require("torch")

UNARY = ["expit", "erf", "erfc", "erfinv", "gammaln", "digamma", "psi", "log_ndtr", "ndtr",
         "ndtri", "i0e", "i1e", "entr", "logit", "log1p", "expm1"]


@pytest.mark.parametrize("name", UNARY)
def test_unary_vs_torch(name):
    v = [0.05, 0.2, 0.5, 0.7, 0.93]
    a = adjit.tensor(v, dtype=adjit.float64, requires_grad=True)
    t = torch.tensor(v, dtype=torch.float64, requires_grad=True)
    ra, rt = getattr(AS, name)(a), getattr(torch.special, name)(t)
    assert ra.grad_fn.name() == type(rt.grad_fn).__name__
    np.testing.assert_allclose(ra.detach().numpy(), rt.detach().numpy(), rtol=1e-13)
    (ra * ra).sum().backward()
    (rt * rt).sum().backward()
    # PyTorch's trigamma (digamma's derivative) is within 1e-9 of SciPy's, which adjit gives
    np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-9)
    # an integer tensor computes in the default float dtype
    ri, rti = getattr(AS, name)(adjit.tensor([1, 2])), getattr(torch.special, name)(
        torch.tensor([1, 2]))
    assert str(ri.dtype).split(".")[-1] == str(rti.dtype).split(".")[-1]


def test_functions_with_arguments_vs_torch():
    v = np.array([[0.2, 0.5, 1.5], [0.7, 1.0, 3.0]])
    a = adjit.tensor(v, requires_grad=True)
    t = torch.tensor(v, requires_grad=True)
    for name, fa, ft in [
            ("polygamma", lambda x: AS.polygamma(2, x), lambda x: torch.special.polygamma(2, x)),
            ("logsumexp", lambda x: AS.logsumexp(x, 1), lambda x: torch.special.logsumexp(x, 1)),
            ("softmax", lambda x: AS.softmax(x, 0), lambda x: torch.special.softmax(x, 0)),
            ("log_softmax", lambda x: AS.log_softmax(x, 1),
             lambda x: torch.special.log_softmax(x, 1)),
            ("xlogy", lambda x: AS.xlogy(x, x + 1.0), lambda x: torch.special.xlogy(x, x + 1.0)),
            ("xlog1py", lambda x: AS.xlog1py(x, x), lambda x: torch.special.xlog1py(x, x)),
            ("logit eps", lambda x: AS.logit(x, eps=0.3), lambda x: torch.special.logit(x, 0.3))]:
        a.grad = None
        t.grad = None
        ra, rt = fa(a), ft(t)
        assert ra.grad_fn.name() == type(rt.grad_fn).__name__, name
        np.testing.assert_allclose(ra.detach().numpy(), rt.detach().numpy(), rtol=1e-13,
                                   err_msg=name)
        (ra * ra).sum().backward()
        (rt * rt).sum().backward()
        np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-11, err_msg=name)


def test_torch_namespace_functions_and_methods():
    v = [0.3, 1.7]
    a = adjit.tensor(v, dtype=adjit.float64, requires_grad=True)
    t = torch.tensor(v, dtype=torch.float64, requires_grad=True)
    for name in ("lgamma", "digamma", "erf", "erfc", "erfinv"):
        if name == "erfinv":
            a2, t2 = a * 0.5, t * 0.5
        else:
            a2, t2 = a, t
        ra, rt = getattr(adjit, name)(a2), getattr(torch, name)(t2)
        assert ra.grad_fn.name() == type(rt.grad_fn).__name__
        np.testing.assert_allclose(ra.detach().numpy(), rt.detach().numpy(), rtol=1e-13)
        np.testing.assert_allclose(getattr(a2, name)().detach().numpy(),
                                   getattr(t2, name)().detach().numpy(), rtol=1e-13)


def test_special_and_other_submodules_are_attributes_after_import_adjit_alone():
    # torch.special.expit(x) works right after `import torch`; adjit.special needed an explicit
    # `import adjit.special`. A fresh process (this module imported adjit.special already);
    # `import adjit` itself must not import them (nor SciPy)
    import subprocess
    import sys
    import textwrap
    code = textwrap.dedent("""
        import sys
        import adjit as torch
        assert "adjit.special" not in sys.modules and "scipy" not in sys.modules
        x = torch.tensor([-2.0, 0.3, 1.5], dtype=torch.float64, requires_grad=True)
        y = torch.special.expit(x)
        y.sum().backward()
        print(repr(y.detach().numpy().tolist()), repr(x.grad.numpy().tolist()),
              y.grad_fn.name())
        # the other torch submodules adjit mirrors, reached the same way
        print(torch.linalg.norm(x.detach()).item(), torch.autograd.functional.__name__,
              torch.func.grad.__name__, torch.special.logsumexp.__name__)
        print(torch.numpy.sin is __import__("numpy").sin,
              torch.scipy.special.logsumexp.__module__)
        try:
            torch.no_such_module
        except AttributeError as e:
            print(e)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    t = torch.tensor([-2.0, 0.3, 1.5], dtype=torch.float64, requires_grad=True)
    ty = torch.special.expit(t)
    ty.sum().backward()
    assert lines[0].split(" ")[-1] == type(ty.grad_fn).__name__
    vals = lines[0].rsplit(" ", 1)[0].split("] ")
    np.testing.assert_allclose(eval(vals[0] + "]"), ty.detach().numpy(), rtol=1e-15)
    np.testing.assert_allclose(eval(vals[1]), t.grad.numpy(), rtol=1e-15)
    norm, fmod, gname, lname = lines[1].split(" ")
    assert float(norm) == pytest.approx(torch.linalg.norm(t.detach()).item(), rel=1e-15)
    assert (fmod, gname, lname) == ("adjit.autograd.functional", "grad", "logsumexp")
    assert lines[2] == "True adjit.scipy.special"
    assert lines[3] == "module 'adjit' has no attribute 'no_such_module'"
