"""In-place Tensor methods (sin_ ... clamp_max_, fill_, masked_fill(_), index_fill(_)) against
PyTorch: values, gradients (torch.autograd on the same graph; finite differences for a few),
`_version`, grad_fn names, and the errors (type and message)."""
import numpy as np
import pytest

import adjit
from adjit.tracer import tensor_inplace
from peers import require

torch = require("torch")


def _grad_fn_name(t):
    fn = t.grad_fn
    return None if fn is None else type(fn).__name__


def _run(lib, body):
    """body(lib) -> dict of tensors/values; tensors become (values, version, grad_fn name);
    an exception becomes (type name, message)."""
    try:
        out = body(lib)
    except Exception as e:  # noqa: BLE001  (compared with the peer's)
        return ("raised", type(e).__name__, str(e))
    res = {}
    for k, v in out.items():
        if isinstance(v, (adjit.Tensor, torch.Tensor)):
            res[k] = (None if v is None else np.asarray(v.detach().numpy()),
                      v._version, _grad_fn_name(v))
        else:
            res[k] = v
    return res


def _same(body, rtol=1e-5, atol=1e-6):
    a, t = _run(adjit, body), _run(torch, body)
    if isinstance(t, tuple):
        assert a == t
        return t
    assert not isinstance(a, tuple), a
    assert a.keys() == t.keys()
    for k in t:
        if isinstance(t[k], tuple):
            av, aver, aname = a[k]
            tv, tver, tname = t[k]
            assert (aver, aname) == (tver, tname), k
            assert av.dtype == tv.dtype, k
            np.testing.assert_allclose(av, tv, rtol=rtol, atol=atol, err_msg=k)
        else:
            assert a[k] == t[k], k
    return t


# data per op: y = 1.5 * x must lie in the op's domain
_POS = [0.3, 0.7, 1.1, 0.45]
_UNIT = [-0.4, 0.1, 0.3, -0.2]
_GENERAL = [-0.8, 0.35, 1.3, -0.05]
_DATA = {"log": _POS, "log2": _POS, "log10": _POS, "sqrt": _POS, "rsqrt": _POS,
         "reciprocal": _POS, "log1p": _POS, "asin": _UNIT, "acos": _UNIT, "atanh": _UNIT,
         "acosh": [0.8, 1.1, 2.0, 0.9]}
_W = [0.5, -1.25, 2.0, 0.75]


def _unary_graph(name):
    def body(lib):
        x = lib.tensor(_DATA.get(name, _GENERAL), dtype=lib.float64, requires_grad=True)
        y = x * 1.5
        z = getattr(y, name + "_")()
        (y * lib.tensor(_W, dtype=lib.float64)).sum().backward()
        return {"y": y, "z_is_y": z is y, "grad": x.grad, "x": x}
    return body


UNARY_NAMES = [u for u in tensor_inplace.UNARY if u not in ("clamp_min", "clamp_max")]


@pytest.mark.parametrize("name", UNARY_NAMES)
def test_unary_inplace_value_grad_version_name(name):
    assert hasattr(torch.Tensor, name + "_")
    t = _same(_unary_graph(name))
    if name in ("asinh", "acosh", "atanh"):  # PyTorch defines no in-place derivative
        assert t[:2] == ("raised", "NotImplementedError")
        return
    assert t["y"][1] == 1  # one write


@pytest.mark.parametrize("name", ["asinh", "acosh", "atanh", "sin", "relu"])
def test_unary_inplace_without_recording(name):
    def body(lib):
        x = lib.tensor([1.2, 1.5, 3.0] if name == "acosh" else [0.5, -0.25, 0.75],
                       requires_grad=True)
        with lib.no_grad():
            getattr(x, name + "_")()
        p = lib.tensor([0.5, 0.25, 0.75])  # no grad: nothing recorded
        getattr(p, name + "_")()
        return {"x": x, "p": p}
    _same(body)


@pytest.mark.parametrize("name", ["sin", "exp", "sqrt", "sigmoid", "reciprocal"])
def test_unary_inplace_finite_differences(name):
    x0 = np.array(_DATA.get(name, _GENERAL))
    w = np.array(_W)

    def f(v):
        y = adjit.tensor(v) * 1.5
        getattr(y, name + "_")()
        return float((y * adjit.tensor(w)).sum())

    x = adjit.tensor(x0, requires_grad=True)
    y = x * 1.5
    getattr(y, name + "_")()
    (y * adjit.tensor(w)).sum().backward()
    eps = 1e-6
    fd = [(f(x0 + eps * e) - f(x0 - eps * e)) / (2 * eps) for e in np.eye(len(x0))]
    np.testing.assert_allclose(x.grad.numpy(), fd, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["clamp_min_", "clamp_max_"])
@pytest.mark.parametrize("bound", ["number", "tensor", "tensor_grad"])
def test_clamp_min_max_inplace(name, bound):
    def body(lib):
        x = lib.tensor(_GENERAL, requires_grad=True)
        b = 0.3 if bound == "number" else lib.tensor(0.3, requires_grad=bound == "tensor_grad")
        y = x * 2
        getattr(y, name)(b)
        y.sum().backward()
        out = {"y": y, "grad": x.grad}
        if bound == "tensor_grad":
            out["bgrad"] = b.grad
        return out
    _same(body)


@pytest.mark.parametrize("name", ["clamp_min_", "clamp_max_"])
def test_clamp_bound_requiring_grad_on_plain_tensor(name):
    # the tensor has no history: the op keeps a copy of its old value for the bound's gradient
    def body(lib):
        b = lib.tensor([0.0, 0.5, 1.0, 0.2], requires_grad=True)
        y = lib.tensor(_GENERAL)
        getattr(y, name)(b)
        (y * lib.tensor(_W)).sum().backward()
        return {"y": y, "bgrad": b.grad}
    _same(body)


def test_integer_tensors():
    for name in ("abs_", "neg_", "sign_", "floor_", "ceil_", "round_", "trunc_", "relu_",
                 "square_", "sin_", "exp_", "sqrt_"):
        _same(lambda lib: {"y": getattr(lib.tensor([-3, 0, 2]), name)()})


def test_round_decimals():
    _same(lambda lib: {"y": lib.tensor([1.55, -2.449, 3.14159]).round_(decimals=2)})


# --- the rules every in-place op follows ---------------------------------------------------
@pytest.mark.parametrize("call", [
    lambda t, lib: t.sin_(), lambda t, lib: t.relu_(), lambda t, lib: t.clamp_min_(0.2),
    lambda t, lib: t.fill_(1.0), lambda t, lib: t.masked_fill_(lib.tensor([True, False, True]), 0),
    lambda t, lib: t.index_fill_(0, lib.tensor([1]), 2.0), lambda t, lib: t.zero_()])
def test_leaf_and_view_of_leaf_refused_and_no_grad_allowed(call):
    def leaf(lib):
        call(lib.tensor([0.5, -1.0, 2.0], requires_grad=True), lib)
        return {}

    def view_of_leaf(lib):
        x = lib.tensor([[0.5, -1.0, 2.0]], requires_grad=True)
        call(x[0], lib)
        return {}

    def under_no_grad(lib):
        x = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
        with lib.no_grad():
            r = call(x, lib)
        return {"x": x, "same": r is x, "rg": x.requires_grad, "leaf": x.is_leaf}

    t = _same(leaf)
    assert t[0] == "raised" and "a leaf Variable that requires grad" in t[2]
    t = _same(view_of_leaf)
    assert t[0] == "raised" and "a view of a leaf Variable" in t[2]
    t = _same(under_no_grad)
    assert t["x"][1] == 1


def test_detach_shares_the_version_counter():
    def body(lib):
        x = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
        d = x.detach()
        d.exp_()
        d.fill_(3)
        return {"x": x, "d": d}
    t = _same(body)
    assert t["x"][1] == 2


def test_modified_saved_input_raises_at_backward():
    def body(lib):
        x = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
        y = x * 2
        z = y * y  # saves y
        y.sin_()
        z.sum().backward()
        return {}
    t = _same(body)
    assert "modified by an inplace operation" in t[2] and "output 0 of Sin" in t[2]


def test_modified_saved_result_raises_at_backward():
    def body(lib):
        x = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
        z = (x * 2).exp()  # saves its result
        z.exp_()
        z.sum().backward()
        return {}
    t = _same(body)
    assert "output 0 of Exp" in t[2]


def test_own_input_is_not_a_saved_tensor():
    # sin_ reads the old value for its gradient: PyTorch keeps a copy; a chain of in-place ops
    def body(lib):
        x = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
        y = x * 2
        y.sin_().exp_().sigmoid_().mul_(3).tanh_()
        (y * lib.tensor([1.0, -2.0, 0.5])).sum().backward()
        return {"y": y, "grad": x.grad}
    _same(body)


def test_inplace_through_a_view_of_a_non_leaf():
    def body(lib):
        x = lib.tensor([[0.5, -1.0, 2.0], [0.25, 1.5, -0.75]], requires_grad=True)
        y = x * 1
        v = y[:, 1:]
        v.sin_()
        y[0].fill_(2.0)
        (y * lib.tensor([1.0, 2.0, 3.0])).sum().backward()
        return {"y": y, "v": v, "grad": x.grad}
    _same(body)

    def saved_result_written_through_base(lib):
        x = lib.tensor([[0.5, -1.0, 2.0], [0.25, 1.5, -0.75]], requires_grad=True)
        y = x * 1
        v = y[:, 1:]
        v.exp_()  # ExpBackward0 saves its result, which the next write changes
        y[0].fill_(2.0)
        (y * lib.tensor([1.0, 2.0, 3.0])).sum().backward()
        return {}
    a, t = _run(adjit, saved_result_written_through_base), \
        _run(torch, saved_result_written_through_base)
    # (PyTorch names the view's op AsStrided, adjit the op that wrote it: docs/torch_reference.md)
    assert a[:2] == t[:2] == ("raised", "RuntimeError")
    assert "is at version 2; expected version 1 instead" in a[2]
    assert a[2].split(",")[0] == t[2].split(",")[0]


def test_module_functions():
    for name in tensor_inplace.FUNCTIONS:
        assert hasattr(torch, name), name
        assert hasattr(adjit, name), name

    def body(lib):
        x = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
        y = x * 2
        lib.sin_(y)
        lib.relu_(y)
        m = lib.masked_fill(y, lib.tensor([False, True, False]), 7.0)
        i = lib.index_fill(m, 0, lib.tensor([0]), -1.0)
        i.sum().backward()
        return {"y": y, "m": m, "i": i, "grad": x.grad}
    _same(body)


# --- fill_ ---------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["int", "float", "tensor", "tensor_grad", "tensor_int"])
def test_fill_(value):
    def body(lib):
        x = lib.tensor([[0.5, -1.0, 2.0], [0.25, 1.5, -0.75]], requires_grad=True)
        v = {"int": 3, "float": -2.5, "tensor": lib.tensor(1.25),
             "tensor_grad": lib.tensor(1.25, requires_grad=True),
             "tensor_int": lib.tensor(4)}[value]
        y = x * 2
        r = y.fill_(v)
        (y * lib.tensor([1.0, 2.0, 3.0])).sum().backward()
        out = {"y": y, "same": r is y, "grad": x.grad}
        if value == "tensor_grad":
            out["vgrad"] = v.grad
        return out
    _same(body)


def test_fill_dtypes_and_plain_tensors():
    _same(lambda lib: {"i": lib.tensor([1, 2, 3]).fill_(2.7), "b": lib.tensor([True]).fill_(0),
                       "f": lib.zeros(2, 3).fill_(lib.tensor(7, dtype=lib.int64)),
                       "s": lib.tensor(5.0).fill_(-1)})

    def grad_into_plain(lib):
        v = lib.tensor(0.5, requires_grad=True)
        y = lib.zeros(4)
        y.fill_(v)
        (y * lib.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
        return {"y": y, "vgrad": v.grad, "rg": y.requires_grad}
    _same(grad_into_plain)


@pytest.mark.parametrize("bad", ["vector", "str", "none"])
def test_fill_errors(bad):
    def body(lib):
        v = {"vector": lib.ones(2), "str": "a", "none": None}[bad]
        lib.rand(3).fill_(v)
        return {}
    a, t = _run(adjit, body), _run(torch, body)
    assert a[:2] == t[:2]
    assert a[2].splitlines()[0] == t[2].splitlines()[0]


# --- masked_fill ---------------------------------------------------------------------------
@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("value", ["number", "tensor_grad"])
@pytest.mark.parametrize("mask_shape", ["same", "row", "scalar"])
def test_masked_fill(inplace, value, mask_shape):
    def body(lib):
        x = lib.tensor([[0.5, -1.0, 2.0], [0.25, 1.5, -0.75]], requires_grad=True)
        mask = {"same": lib.tensor([[True, False, True], [False, False, True]]),
                "row": lib.tensor([False, True, True]), "scalar": lib.tensor(True)}[mask_shape]
        v = -3.5 if value == "number" else lib.tensor(0.75, requires_grad=True)
        y = x * 2
        z = y.masked_fill_(mask, v) if inplace else y.masked_fill(mask, v)
        (z * lib.tensor([1.0, 2.0, 3.0])).sum().backward()
        out = {"y": y, "z": z, "same": z is y, "grad": x.grad}
        if value != "number":
            out["vgrad"] = v.grad
        return out
    _same(body)


def test_masked_fill_broadcasts_self_out_of_place_only():
    def out_of_place(lib):
        x = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
        z = x.masked_fill(lib.tensor([[True, False, False], [False, False, True]]), 9.0)
        z.sum().backward()
        return {"z": z, "grad": x.grad}
    _same(out_of_place)

    def inplace(lib):
        lib.rand(3).masked_fill_(lib.ones(2, 3, dtype=lib.bool), 1.0)
        return {}
    assert _same(inplace)[0] == "raised"


@pytest.mark.parametrize("bad", ["float_mask", "long_mask", "list_mask", "vector_value"])
@pytest.mark.parametrize("inplace", [False, True])
def test_masked_fill_errors(bad, inplace):
    def body(lib):
        x = lib.rand(3)
        mask = {"float_mask": lib.ones(3), "long_mask": lib.tensor([1, 0, 1]),
                "list_mask": [True, False, True]}.get(bad, lib.tensor([True, False, True]))
        v = lib.ones(1) if bad == "vector_value" else 1.0
        (x.masked_fill_ if inplace else x.masked_fill)(mask, v)
        return {}
    a, t = _run(adjit, body), _run(torch, body)
    assert a[:2] == t[:2]
    assert a[2].splitlines()[0] == t[2].splitlines()[0]


def test_masked_fill_mask_is_saved():
    # MaskedFillBackward saves the mask: writing it before backward is PyTorch's error
    def body(lib):
        x = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
        mask = lib.tensor([True, False, True])
        z = (x * 2).masked_fill(mask, 0.0)
        mask.fill_(False)
        z.sum().backward()
        return {}
    t = _same(body)
    assert t[0] == "raised" and "modified by an inplace operation" in t[2]


# --- index_fill ----------------------------------------------------------------------------
@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("dim,index", [(0, [1]), (1, [0, -1]), (-1, [2, 2]), (1, 1), (0, [])])
@pytest.mark.parametrize("value", ["number", "tensor_grad"])
def test_index_fill(inplace, dim, index, value):
    def body(lib):
        x = lib.tensor([[0.5, -1.0, 2.0], [0.25, 1.5, -0.75]], requires_grad=True)
        if lib is torch and value != "number":
            # PyTorch 2.13's IndexFillBackward1 fails on a negative index ("INDICES element is
            # out of DATA bounds"): the peer gets the same positions wrapped
            index = [i % 3 for i in index] if isinstance(index, list) else index
        idx = lib.tensor(index, dtype=lib.int64)
        v = 4.0 if value == "number" else lib.tensor(-0.5, requires_grad=True)
        y = x * 2
        z = y.index_fill_(dim, idx, v) if inplace else y.index_fill(dim, idx, v)
        (z * lib.tensor([1.0, 2.0, 3.0])).sum().backward()
        out = {"y": y, "z": z, "same": z is y, "grad": x.grad}
        if value != "number":
            out["vgrad"] = v.grad
        return out
    _same(body)


@pytest.mark.parametrize("bad", ["out_of_range", "negative_out_of_range", "float_index",
                                 "int32_index", "matrix_index", "bad_dim", "list_index",
                                 "vector_value"])
def test_index_fill_errors(bad):
    def body(lib):
        x = lib.rand(2, 3)
        dim, idx, v = 1, lib.tensor([1]), 1.0
        if bad == "out_of_range":
            idx = lib.tensor([3])
        elif bad == "negative_out_of_range":
            idx = lib.tensor([-4])
        elif bad == "float_index":
            idx = lib.tensor([1.0])
        elif bad == "int32_index":
            idx = lib.tensor([1], dtype=lib.int32)
        elif bad == "matrix_index":
            idx = lib.tensor([[1]])
        elif bad == "bad_dim":
            dim = 2
        elif bad == "list_index":
            idx = [1]
        else:
            v = lib.ones(2)
        x.index_fill_(dim, idx, v)
        return {}
    a, t = _run(adjit, body), _run(torch, body)
    assert a[:2] == t[:2]
    assert a[2].splitlines()[0] == t[2].splitlines()[0]


def test_index_fill_under_jit():
    # a traced index must not be baked into the compiled function
    @adjit.jit
    def f(x, idx):
        return x.index_fill(1, idx, 0.0).sum()

    x = adjit.tensor([[0.5, -1.0, 2.0], [0.25, 1.5, -0.75]])
    for index in ([0], [2], [1, -1]):
        got = float(f(x, adjit.tensor(index)))
        want = float(torch.tensor(x.numpy()).index_fill(1, torch.tensor(index), 0.0).sum())
        assert got == pytest.approx(want)


@pytest.mark.parametrize("op", ["sin_", "mul_", "add_", "clamp_min_", "copy_", "setitem",
                                "add_no_grad"])
def test_write_to_an_expanded_tensor_refused(op):
    # elements sharing memory: PyTorch refuses (adjit would otherwise write a copy, not b)
    def body(lib):
        b = lib.zeros(3, 1)
        e = b.expand(3, 4)
        if op == "sin_":
            e.sin_()
        elif op == "mul_":
            e.mul_(2)
        elif op == "add_":
            e.add_(lib.ones(3, 4))
        elif op == "clamp_min_":
            e.clamp_min_(0.5)
        elif op == "copy_":
            e.copy_(lib.ones(3, 4))
        elif op == "setitem":
            e[0] = 5.0
        else:
            with lib.no_grad():
                e.add_(1.0)
        return {"b": b}
    t = _same(body)
    assert t[:2] == ("raised", "RuntimeError") and "single memory location" in t[2]


@pytest.mark.parametrize("op", ["fill_", "zero_", "masked_fill_", "index_fill_"])
def test_fill_of_an_expanded_tensor_refused(op):
    # PyTorch writes the base here; adjit refuses (its write would reach a copy): the message
    # is PyTorch's for the other in-place ops
    b = adjit.zeros(3, 1)
    e = b.expand(3, 4)
    args = {"fill_": (2.0,), "zero_": (), "index_fill_": (1, adjit.tensor([0]), 2.0),
            "masked_fill_": (adjit.ones(3, 4, dtype=adjit.bool), 2.0)}[op]
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        getattr(e, op)(*args)
    assert b.flatten().tolist() == [0.0, 0.0, 0.0]


def test_inplace_on_a_broadcast_gradient_still_works():
    # adjit may hold a .grad as a read-only broadcast: no user view, so it is copied
    def body(lib):
        x = lib.ones(3, requires_grad=True)
        x.sum().backward()
        x.grad.mul_(2)
        x.grad.sin_()
        with lib.no_grad():
            x.grad.add_(1.0)
        # (values only: after the first backward PyTorch's .grad is at version 1, adjit's at 0)
        return {"g": x.grad.numpy().tolist()}
    _same(body)


def _chain(lib):
    def f(x):
        y = x * 2
        y.sin_()
        y.masked_fill_(x > 0.5, 0.25)
        y.clamp_min_(0.1)
        z = y.index_fill(0, lib.tensor([1]), 3.0)
        z.exp_()
        w = z * 1
        w.fill_(z[0])
        return z.sum() + y.sum() + w.sum()
    return f


def test_inplace_chain_eager_jit_and_torch():
    data = [0.2, 0.7, 0.4, 0.9]
    xt = torch.tensor(data, requires_grad=True)
    want = _chain(torch)(xt)
    want.backward()
    for f in (_chain(adjit), adjit.jit(_chain(adjit))):
        x = adjit.tensor(data, requires_grad=True)
        got = f(x)
        got.backward()
        assert float(got.detach()) == pytest.approx(float(want.detach()), rel=1e-6)
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-6)
    # without grad: a jitted call equals the eager one (clamp_min under jit: no grad_fn to name)
    plain = adjit.tensor(data)
    assert float(adjit.jit(_chain(adjit))(plain)) == pytest.approx(float(_chain(adjit)(plain)))


def test_writes_through_views_of_a_plain_tensor_reach_the_base():
    def body(lib):
        b = lib.zeros(2, 3)
        b[0].fill_(1)
        b[:, 1].masked_fill_(lib.tensor([True, False]), 5)
        b.T[2].index_fill_(0, lib.tensor([1]), 7)
        b[1].exp_()
        return {"b": b}
    t = _same(body)
    assert t["b"][1] == 4
