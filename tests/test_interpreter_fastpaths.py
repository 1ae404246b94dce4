"""The interpreter tier's generated function takes shortcuts that must give the bits of the
graph as traced (`eval_graph` of the unoptimised graph, each equation's NumPy implementation) and
NumPy's own answer, for every input, special values included (adjit/runtime/interpreter.py):
- an integer index wrapped and bounds-checked (`indexing.wrap_traced_index`: one `index_wrap`)
  is the index itself behind one range test when every index is in [0, n);
- a chain of reshapes and transposes of a dot_general's result that only reshapes it in C order
  is the product itself (a fresh array: no copy of a view at the end);
- the exact product with an identity matrix (`passes._exact_identity_product`) is x + 0.0
  behind one test that `isfinite(x)` holds everywhere, the six-operation form only when x has a non-finite
  element;
- equations of constants only (the identity's full -> pad -> reshape in the graph as traced)
  run once per plan, their results kept read-only, not on every call of the loop."""
from __future__ import annotations

import numpy as np
import pytest

import adjit
from adjit.ir import eval_graph
from adjit.ir.core import REGISTRY
from adjit.ir.passes import optimize
from adjit.runtime import interpreter
from adjit.runtime.interpreter import Plan

I64 = np.iinfo(np.int64)


@pytest.fixture(autouse=True)
def generate_at_once(monkeypatch):
    monkeypatch.setattr(interpreter, "GEN_SECONDS_PER_EQN", 0.0)


def _bits(a):
    a = np.asarray(a)
    return a.dtype, a.shape, a.tobytes()


def _outcome(f):
    """f()'s results as bits, or the type of the error it raised."""
    try:
        return [_bits(r) for r in f()]
    except IndexError:
        return IndexError


def _plan_runs(g, args):
    """(the generated function, the plan's loop's outcome, the generated function's outcome)
    of graph g on args."""
    fn = interpreter.generate(g)
    return fn, _outcome(lambda: Plan(g)(args, g.consts)), _outcome(lambda: fn(args, g.consts))


LABELS = [
    [0, 1, 2, 4, 3, 0],  # all in range: the shortcut
    [0, -1, -5, 4, 3, -2],  # negative: wrapped
    [0, 1, 5, 4, 3, 0],  # out of range: IndexError
    [0, 1, -6, 4, 3, 0],
    [0, I64.max, 2, 4, 3, 0],
    [0, I64.min, 2, 4, 3, 0],
    [I64.min + 4, 0, 0, 0, 0, 0],  # i + n stays negative
]


@pytest.mark.parametrize("chunk", [400, 2])  # 2: the group spans several generated functions
@pytest.mark.parametrize("labels", LABELS)
def test_wrapped_integer_indices_match_numpy_and_the_traced_graph(monkeypatch, chunk, labels):
    monkeypatch.setattr(interpreter, "CHUNK", chunk)
    z = np.array([[0.5, -0.0, np.inf, np.nan, -1.5]] * 6) * np.arange(1, 7)[:, None]

    def f(z, y):  # W2's cross-entropy pick, and the label array's own arithmetic
        return z[np.arange(6), y] * 2.0, y * 3

    g = adjit.make_ir(f)(z, np.zeros(6, np.int64))  # traced once; replayed on the labels
    y = np.array(labels, np.int64)
    opt = optimize(g)
    fn, loop, gen = _plan_runs(opt, [z, y])
    assert [e.prim.name for e in opt.eqns].count("index_wrap") == 1, opt
    assert "_cnz(" in fn.source  # the range test

    def numpy():
        return z[np.arange(6), y] * 2.0, y * 3
    want = _outcome(numpy)
    assert _outcome(lambda: eval_graph(g, [z, y])) == want
    assert loop == want
    assert gen == want
    if want is not IndexError:
        r = fn([z, y], opt.consts)
        assert all(a is not y and a.base is None for a in r)  # fresh, never the argument


def test_a_wrapped_intermediate_index_is_freed_and_never_written(monkeypatch):
    # the index is an intermediate (y * 1) that dies at the index_wrap: freed on both
    # branches; the result aliases it on the shortcut, so the later `add` must not write into it
    from adjit.ir import parse_graph
    g = parse_graph(
        "def f(y: i64[4], k: i64[4]) -> (i64[4], i64[4]):\n"
        "  i: i64[4] = mul y 1\n"
        "  r: i64[4] = index_wrap i 4 9\n"
        "  s: i64[4] = add r k\n"
        "  return s, r\n")
    k = np.array([10, 20, 30, 40])
    for y in ([0, 1, 2, 3], [-1, -4, 3, 9], [I64.min, I64.max, 0, 4]):
        y = np.array(y, np.int64)
        fn, loop, gen = _plan_runs(g, [y, k])
        want = _outcome(lambda y=y: eval_graph(g, [y, k]))
        assert loop == want and gen == want, (y, fn.source)
        assert "_cnz(" in fn.source
        s, r = fn([y, k], [])
        assert s is not r and r.base is None and np.shares_memory(s, r) is False


SPECIAL = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e308, -5e-324, 2.5])


def _special(shape, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    flat = a.reshape(-1)
    flat[rng.choice(flat.size, size=min(flat.size, SPECIAL.size), replace=False)] = \
        SPECIAL[:min(flat.size, SPECIAL.size)]
    return a


def test_a_hessian_result_is_the_product_itself_not_a_copy_of_a_view():
    # W5: jit(hessian) ends in dot_general -> transpose -> reshape -> transpose, which is the
    # product reshaped in C order
    def f(x, A):
        return (np.tanh(A @ x) ** 2).sum()
    x, A = _special(16, 0), _special((16, 16), 1) / 4
    g = adjit.make_ir(adjit.hessian(f))(x, A)
    opt = optimize(g)
    fn, loop, gen = _plan_runs(opt, [x, A])
    want = _outcome(lambda: eval_graph(g, [x, A]))
    assert loop == want and gen == want
    results = fn.source.split("return [")[-1].split("]")[0]
    assert ".copy()" not in results and "transpose((1, 2, 0))" not in fn.source, fn.source
    (h,) = fn([x, A], opt.consts)
    assert h.base is None and h.flags.c_contiguous and h.flags.writeable
    xs, As = np.random.default_rng(2).standard_normal(16), np.random.default_rng(3).standard_normal((16, 16)) / 4
    t = np.tanh(As @ xs)  # NumPy by hand: H = A^T diag(2 (1 - t^2)(1 - 3 t^2)) A
    np.testing.assert_allclose(fn([xs, As], opt.consts)[0],
                               As.T @ ((2 * (1 - t * t) * (1 - 3 * t * t))[:, None] * As),
                               rtol=1e-12, atol=1e-12)


CHAINS = [
    # the product w, reshaped back in C order through transposes of size-1 axes
    ("f64[4,3,1]", ("  x: f64[4,1,3] = transpose[perm=(0, 2, 1)] w\n"
                    "  y: f64[12] = reshape[shape=(12,)] x\n"
                    "  z: f64[2,6] = reshape[shape=(2, 6)] y\n"), "z", "f64[2,6]"),
    # a real transpose: not a reshape, made as recorded
    ("f64[4,3,1]", ("  x: f64[3,1,4] = transpose[perm=(1, 2, 0)] w\n"
                    "  z: f64[3,4] = reshape[shape=(3, 4)] x\n"), "z", "f64[3,4]"),
    # transposed twice back: the product itself
    ("f64[4,3,1]", ("  x: f64[3,4,1] = transpose[perm=(1, 0, 2)] w\n"
                    "  z: f64[4,3,1] = transpose[perm=(1, 0, 2)] x\n"), "z", "f64[4,3,1]"),
]


@pytest.mark.parametrize("wt,body,res,rt", CHAINS, ids=["reshape", "transpose", "back"])
@pytest.mark.parametrize("also", [False, True])  # True: a link is a result too
def test_view_chains_of_a_product_give_the_recorded_bits(wt, body, res, rt, also):
    from adjit.ir import parse_graph
    link = body.split(":")[0].strip()
    lt = body.split(":")[1].split("=")[0].strip()
    outs = f"({rt}, {lt})" if also else rt
    ret = f"{res}, {link}" if also else res
    g = parse_graph(
        f"def f(a: f64[4,2], b: f64[2,3,1]) -> {outs}:\n"
        f"  w: {wt} = dot_general[contract=((1,), (0,)), batch=((), ())] a b\n"
        f"{body}  return {ret}\n")
    a, b = _special((4, 2), 4), _special((2, 3, 1), 5)
    fn, loop, gen = _plan_runs(g, [a, b])
    want = _outcome(lambda: eval_graph(g, [a, b]))
    assert loop == want and gen == want, fn.source
    with np.errstate(all="ignore"):
        w = np.tensordot(a, b, ((1,), (0,)))  # NumPy: the same product, the chain by hand
    r = fn([a, b], [])
    assert r[0].base is None
    assert len({id(o) for o in r}) == len(r)
    for o in r:
        assert o.base is None and o.flags.writeable
    if "(12,)" in body:
        assert _bits(r[0]) == _bits(w.transpose(0, 2, 1).reshape(12).reshape(2, 6))
        if not also:  # the product reshaped once, its links never made
            assert "transpose" not in fn.source and fn.source.count(".reshape(") == 2


LAZY = (
    "def f(p: f32[4,3], c: f32[4,3]) -> (f32[4,3], f32[3]):\n"
    "  z: f32[4,3] = full[shape=(4, 3), value=0.0, dtype='f32']\n"
    "  m: bool[4,3] = eq p 0.0\n"
    "  h: f32[4,3] = mul c 0.5\n"
    "  q: f32[4,3] = select m h z\n"
    "  k: bool[4,3] = gt p 0.0\n"
    "  s: f32[4,3] = select k c q\n"
    "  t: f32[3] = reduce_sum[axes=(0,)] s\n"
    "  return s, t\n")


@pytest.mark.parametrize("zeros", [[], [(0, 0)], [(1, 2), (3, 0)]])
@pytest.mark.parametrize("special", [False, True])
def test_relu_derivative_select_matches_numpy_and_the_graph(zeros, special):
    # relu's derivative at 0 (docs/ir.md: half the cotangent); the mask is usually all false
    from adjit.ir import parse_graph
    g = parse_graph(LAZY)
    rng = np.random.default_rng(len(zeros))
    p = rng.standard_normal((4, 3)).astype(np.float32)
    c = rng.standard_normal((4, 3)).astype(np.float32)
    if special:
        p[0, 1], p[2, 2], p[3, 1] = np.nan, np.inf, -np.inf
        c[1, 1], c[2, 0], c[0, 2] = np.nan, -0.0, np.inf
    for i, j in zeros:
        p[i, j] = -0.0 if special else 0.0  # -0.0 == 0 too
    fn, loop, gen = _plan_runs(g, [p, c])
    assert "_cnz(" in fn.source  # the half-cotangent is made only when p has a zero
    want = _outcome(lambda: eval_graph(g, [p, c]))
    # NumPy by hand: the relu derivative PyTorch takes (0 at 0) plus half at exact zeros
    s = np.where(p > 0, c, np.where(p == 0, c * np.float32(0.5), np.float32(0.0)))
    assert want == [_bits(s), _bits(s.sum(axis=0))]
    assert loop == want and gen == want


def test_mlp_step_plan_matches_the_traced_graph_bitwise():
    from adjit.bench.workloads import _mlp
    inp = list(_mlp.make_inputs(32, 20, 16, 5)(0))
    g = adjit.make_ir(adjit.value_and_grad(_mlp.loss, argnums=(0, 1, 2, 3)))(*inp)
    opt = optimize(g)
    for zero_pre_activation in (False, True):
        if zero_pre_activation:  # a hidden pre-activation exactly 0: relu's derivative 1/2
            inp[1] = inp[1].copy()
            inp[1][3] = -(inp[4] @ inp[0])[0, 3]
            assert ((inp[4] @ inp[0] + inp[1]) == 0).any()
        fn, loop, gen = _plan_runs(opt, inp)
        assert "_cnz(" in fn.source
        want = _outcome(lambda: eval_graph(g, inp))
        assert loop == want and gen == want


SMALL = (
    "def f(a: f64[5,4], b: f64[4], c: f64[4,5]) -> (f64[4,5], f64[5,1,4], f64[4,5]):\n"
    "  d: f64[4,5] = transpose[perm=(1, 0)] a\n"
    "  e: f64[4,5] = broadcast_in_dim[shape=(4, 5), dims=(0,)] b\n"
    "  m: f64[4,5] = mul d e\n"
    "  s: f64[4,5] = sub c e\n"
    "  k: f64[5,1,4] = broadcast_in_dim[shape=(5, 1, 4), dims=(2,)] b\n"
    "  r: f64[5,4] = exp a\n"
    "  q: f64[5,1,4] = reshape[shape=(5, 1, 4)] r\n"
    "  t: f64[5,1,4] = add q k\n"
    "  return m, t, s\n")


def test_small_broadcasts_and_transposes_made_contiguous_give_the_same_bits():
    # the broadcasts and the transpose are made as C-ordered arrays of their own (NumPy's
    # trivial loop); the values are those NumPy's broadcasting gives
    from adjit.ir import parse_graph
    g = parse_graph(SMALL)
    a, b, c = _special((5, 4), 6), _special(4, 7), _special((4, 5), 8)
    fn, loop, gen = _plan_runs(g, [a, b, c])
    assert fn.source.count("_empty(") == 2, fn.source
    assert all(ln.endswith(".copy()") for ln in fn.source.splitlines() if "transpose" in ln)
    want = _outcome(lambda: eval_graph(g, [a, b, c]))
    with np.errstate(all="ignore"):
        by_hand = [a.T * b[:, None], (np.exp(a) + b).reshape(5, 1, 4), c - b[:, None]]
    assert want == [_bits(r) for r in by_hand]
    assert loop == want and gen == want
    for r in fn([a, b, c], []):
        assert r.base is None and r.flags.c_contiguous


SHARED = (
    "def f(a: f64[4,5], b: f64[5], c: f64[4,1,5], d: f64[4,5], w: f64[4]) -> "
    "(f64[4,1,5], f64[4,5]):\n"
    "  e: f64[4,5] = broadcast_in_dim[shape=(4, 5), dims=(1,)] b\n"
    "  m: f64[4,5] = mul a e\n"
    "  k: f64[4,1,5] = broadcast_in_dim[shape=(4, 1, 5), dims=(2,)] b\n"
    "  t: f64[4,1,5] = add c k\n"
    "  h: f64[4,5] = broadcast_in_dim[shape=(4, 5), dims=(0,)] w\n"  # other elements
    "  n: f64[4,5] = sub d e\n"  # the first broadcast read after the second is made
    "  o: f64[4,5] = mul n h\n"
    "  p: f64[4,5] = add m o\n"
    "  return t, p\n")


@pytest.mark.parametrize("late", [False, True])
def test_broadcasts_of_one_operand_in_one_order_are_made_once(late):
    # b's rows as f64[4,5] and f64[4,1,5]: one array, the second a reshape of the first, which
    # no `out=` writes while the reshape lives; a broadcast along the other axis is its own
    from adjit.ir import parse_graph
    text = SHARED
    if not late:  # the first broadcast's last reader before the second is made
        text = text.replace("  n: f64[4,5] = sub d e\n", "  n: f64[4,5] = sub d a\n")
    g = parse_graph(text)
    args = [_special((4, 5), 1), _special(5, 2), _special((4, 1, 5), 3), _special((4, 5), 4),
            _special(4, 5)]
    fn, loop, gen = _plan_runs(g, args)
    assert fn.source.count("_empty(") == 2, fn.source  # e (k is its reshape) and h
    a, b, c, d, w = args
    with np.errstate(all="ignore"):
        n = d - b[None, :] if late else d - a
        by_hand = [c + b[None, None, :], a * b[None, :] + n * w[:, None]]
    want = _outcome(lambda: eval_graph(g, args))
    assert want == [_bits(r) for r in by_hand]
    assert loop == want and gen == want
    for _ in range(2):  # again: nothing the first call wrote in place shows
        assert _outcome(lambda: fn(args, [])) == want


def test_made_broadcasts_reuse_a_pooled_buffer_never_shared_or_returned():
    # each small made broadcast takes a buffer from its plan's pool and gives it back at the
    # end of the call when nothing else holds it: results never alias one, a later call never
    # changes an earlier call's results, and threads calling at once each get their own
    import threading
    import time
    from adjit.ir import parse_graph
    g = parse_graph(SHARED)
    fn = interpreter.generate(g)
    assert fn.source.count(".pop()") == 2 and fn.source.count(".append(") == 2, fn.source

    def by_hand(a, b, c, d, w):
        with np.errstate(all="ignore"):
            return [c + b[None, None, :], a * b[None, :] + (d - b[None, :]) * w[:, None]]

    def inputs(seed):
        return [_special((4, 5), seed), _special(5, seed + 1), _special((4, 1, 5), seed + 2),
                _special((4, 5), seed + 3), _special(4, seed + 4)]
    kept = []
    for seed in range(4):  # the pool's buffers are reused from the second call on
        args = inputs(seed)
        got = fn(args, [])
        assert [_bits(r) for r in got] == [_bits(r) for r in by_hand(*args)]
        assert [_bits(r) for r in got] == _outcome(lambda: eval_graph(g, args))
        kept.append(([_bits(r) for r in got], got))
    for want, got in kept:  # unchanged by the later calls
        assert [_bits(r) for r in got] == want
    pools = [v for k, v in fn.__globals__.items() if k.startswith("_pool")]
    assert pools and all(len(p) == 1 for p in pools)  # one buffer each, given back
    errors = []

    class Yielding(np.ndarray):  # lets another thread run inside a call (the GIL is released)
        def __array_ufunc__(self, uf, method, *ins, **kw):
            time.sleep(0)
            if "out" in kw:
                kw["out"] = tuple(np.asarray(o) for o in kw["out"])
            return getattr(uf, method)(*[np.asarray(x) for x in ins], **kw)

    def worker(seed):
        try:
            for k in range(100):
                args = inputs(seed + k % 3)
                args[0] = args[0].view(Yielding)  # read with the first made broadcast
                got = fn(args, [])
                want = by_hand(*map(np.asarray, args))
                if [_bits(r) for r in got] != [_bits(r) for r in want]:
                    errors.append(seed)
                    return
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
    threads = [threading.Thread(target=worker, args=(10 * t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


@pytest.mark.parametrize("op,derived", [("mul 2.0 l", True), ("mul l -0.5", True),
                                        ("add l 0.0", True), ("sub 1.0 l", True),
                                        ("div l 3.0", True), ("div 1.0 l", True),
                                        ("neg l", True), ("exp l", False), ("sqrt l", False)])
def test_a_broadcast_of_an_ieee_op_is_computed_on_the_operands_broadcast(op, derived):
    # q = op(l) broadcast like an earlier made broadcast of l: op on that array (W5's
    # `2 * t`), the bits of op on the vector then broadcast, special values included; ops
    # outside add, sub, mul, div, neg (exp, sqrt) stay as recorded
    from adjit.ir import parse_graph
    g = parse_graph(
        "def f(a: f64[4,5], l: f64[5], c: f64[4,1,5]) -> (f64[4,5], f64[4,1,5]):\n"
        "  e: f64[4,5] = broadcast_in_dim[shape=(4, 5), dims=(1,)] l\n"
        "  m: f64[4,5] = mul a e\n"
        f"  q: f64[5] = {op}\n"
        "  k: f64[4,1,5] = broadcast_in_dim[shape=(4, 1, 5), dims=(2,)] q\n"
        "  t: f64[4,1,5] = mul c k\n"
        "  return m, t\n")
    for seed in range(3):
        args = [_special((4, 5), seed), _special(5, seed + 1), _special((4, 1, 5), seed + 2)]
        fn, loop, gen = _plan_runs(g, args)
        lines = [ln.strip() for ln in fn.source.splitlines()]
        assert any(ln.startswith("v2 =") for ln in lines) != derived, fn.source  # q's eqn
        want = _outcome(lambda: eval_graph(g, args))
        assert loop == want and gen == want
        a, l, c = args
        with np.errstate(all="ignore"):
            q = {"mul 2.0 l": 2.0 * l, "mul l -0.5": l * -0.5, "add l 0.0": l + 0.0,
                 "sub 1.0 l": 1.0 - l, "div l 3.0": l / 3.0, "div 1.0 l": 1.0 / l,
                 "neg l": -l, "exp l": np.exp(l), "sqrt l": np.sqrt(l)}[op]
            assert want == [_bits(a * l[None, :]), _bits(c * q[None, None, :])]


@pytest.mark.parametrize("xs,ys,lc,rc", [((16, 16), (16,), 1, 0), ((7,), (7, 5), 0, 0),
                                         ((3, 40), (40,), 1, 0), ((40, 3), (40,), 0, 0),
                                         ((2, 3, 9), (9,), 2, 0), ((9,), (4, 9), 0, 1)])
@pytest.mark.parametrize("dt", ["f64", "f32"])
def test_a_product_with_a_vector_is_numpys_vector_product(xs, ys, lc, rc, dt):
    # the vector is not reshaped into a column: np.dot's gemv either way, the same bits as
    # the implementation (np.tensordot), special values included
    from adjit.ir import parse_graph
    out = tuple(d for a, d in enumerate(xs) if a != lc) + tuple(d for a, d in enumerate(ys)
                                                              if a != rc)
    fmt = lambda s: f"{dt}[{','.join(map(str, s))}]"
    g = parse_graph(
        f"def f(a: {fmt(xs)}, b: {fmt(ys)}) -> {fmt(out)}:\n"
        f"  c: {fmt(out)} = dot_general[contract=(({lc},), ({rc},)), batch=((), ())] a b\n"
        f"  return c\n")
    npdt = np.float64 if dt == "f64" else np.float32
    for seed in range(3):
        with np.errstate(over="ignore"):  # 1e308 is inf in f32
            a, b = _special(xs, seed).astype(npdt), _special(ys, seed + 10).astype(npdt)
        fn, loop, gen = _plan_runs(g, [a, b])
        want = _outcome(lambda a=a, b=b: eval_graph(g, [a, b]))
        assert loop == want and gen == want
        with np.errstate(all="ignore"):
            assert want == [_bits(np.tensordot(a, b, ((lc,), (rc,))))]
    assert "reshape" not in fn.source.split("dot(")[1].split("\n")[0] or len(xs) == 3


@pytest.mark.parametrize("xs,ys", [((4, 1), (3,)), ((3,), (2, 2)), ((2, 3), (5,))])
def test_an_outer_product_with_a_vector_keeps_the_vector_uncontracted(xs, ys):
    # a vector that is contracted nowhere (an outer product, what jacrev of `M @ v` and vmap
    # of `einsum(',ab')` record) is not the vector case of np.dot
    from adjit.ir import parse_graph
    fmt = lambda s: f"f64[{','.join(map(str, s))}]"
    g = parse_graph(
        f"def f(a: {fmt(xs)}, b: {fmt(ys)}) -> {fmt(xs + ys)}:\n"
        f"  c: {fmt(xs + ys)} = dot_general[contract=((), ()), batch=((), ())] a b\n"
        f"  return c\n")
    a, b = _special(xs, 1), _special(ys, 2)
    fn, loop, gen = _plan_runs(g, [a, b])
    want = _outcome(lambda: eval_graph(g, [a, b]))
    with np.errstate(all="ignore"):
        assert want == [_bits(np.tensordot(a, b, 0))]
    assert loop == want and gen == want


def _eye_graph(n, dt, eye_left):
    """x @ eye(n) (or eye(n) @ x, contracting x's first axis), the identity as traced."""
    prod = "eye x" if eye_left else "x eye"
    return (f"def f(x: {dt}[{n},{n}]) -> {dt}[{n},{n}]:\n"
            f"  ones: {dt}[{n}] = full[shape=({n},), value=1.0, dtype='{dt}']\n"
            f"  spread: {dt}[{n * n}] = pad[low=(0,), high=(0,), interior=({n},)] ones\n"
            f"  eye: {dt}[{n},{n}] = reshape[shape=({n}, {n})] spread\n"
            f"  c: {dt}[{n},{n}] = dot_general[contract=((1,), (0,)), batch=((), ())] {prod}\n"
            "  return c\n")


EYE_ROWS = {
    "finite": [],
    "inf alone": [(1, 2, np.inf)],
    "-inf alone": [(0, 0, -np.inf)],
    "two infs": [(2, 0, np.inf), (2, 3, -np.inf)],
    "nan": [(3, 1, np.nan)],
    "nan and inf": [(0, 1, np.nan), (0, 2, np.inf), (3, 3, -np.inf)],
}


@pytest.mark.parametrize("dt", ["f32", "f64"])
@pytest.mark.parametrize("eye_left", [False, True])
@pytest.mark.parametrize("case", list(EYE_ROWS))
def test_identity_product_fast_path_keeps_blas_bits(dt, eye_left, case):
    from adjit.ir import parse_graph
    n = 4
    g = parse_graph(_eye_graph(n, dt, eye_left))
    opt = optimize(g)
    npdt = np.float32 if dt == "f32" else np.float64
    x = np.random.default_rng(3).standard_normal((n, n)).astype(npdt)
    x[1, 1], x[2, 2] = -0.0, 0.0  # -0.0 becomes 0.0
    for i, j, v in EYE_ROWS[case]:
        x[i, j] = v
    fn = interpreter.generate(opt)
    loop = [_nan_bits(r) for r in Plan(opt)([x], opt.consts)]
    gen = [_nan_bits(r) for r in fn([x], opt.consts)]
    # one test of x on the common all-finite path, the six operations only behind it
    assert "_isfin(" in fn.source and "else:" in fn.source, fn.source
    # a count of the mask (~0.3 us), not ndarray.all (~1 us through NumPy's Python wrapper)
    assert "_cnz(_isfin(" in fn.source and ".all()" not in fn.source, fn.source
    assert fn.source.index("_isfin(") < fn.source.index("_addr("), fn.source
    want = [_nan_bits(r) for r in eval_graph(g, [x])]
    with np.errstate(invalid="ignore"):
        ref = np.eye(n, dtype=npdt) @ x if eye_left else x @ np.eye(n, dtype=npdt)
    assert want == [_nan_bits(ref)]
    assert loop == want and gen == want  # the loop runs the six operations: the reference


def _nan_bits(a):
    """The bits of `a`, every NaN as one (NaN equals NaN whatever its payload, as
    tests/test_exact_rewrites.py compares)."""
    a = np.array(a)
    a[np.isnan(a)] = np.nan
    return _bits(a)


@pytest.mark.parametrize("case", list(EYE_ROWS))
def test_the_traced_identity_is_built_once_per_plan(monkeypatch, case):
    from adjit.ir import parse_graph
    monkeypatch.setattr(interpreter, "GEN_SECONDS_PER_EQN", 1e9)  # the loop on every call
    n = 6
    text = _eye_graph(n, "f64", False).replace(
        "-> f64[6,6]:", "-> (f64[6,6], f64[6,6]):").replace("return c", "return c, eye")
    g = parse_graph(text)  # as traced: not optimised
    builds, counting = [], [False]
    pad = REGISTRY["pad"]
    impl = pad.impl  # (counted while the plan runs: the pad impl no longer asks the rule)
    monkeypatch.setattr(pad, "impl", lambda *a, **k: (counting[0] and builds.append(1)) or
                        impl(*a, **k))
    plan = Plan(g)
    x = np.random.default_rng(5).standard_normal((n, n))
    x[1, 1] = -0.0
    for i, j, v in EYE_ROWS[case]:
        x[i, j] = v
    with np.errstate(invalid="ignore"):
        ref = [_nan_bits(x @ np.eye(n)), _nan_bits(np.eye(n))]
    assert [_nan_bits(r) for r in eval_graph(g, [x])] == ref
    counting[0] = True
    for call in range(4):
        got = plan([x], g.consts)
        assert [_nan_bits(r) for r in got] == ref
        assert all(r.flags.writeable for r in got)
        got[1][...] = 7.0  # the caller's own array: the kept identity is not it
    counting[0] = False
    assert len(builds) == 1  # the pad ran on the first call only


@pytest.mark.parametrize("m,k,n", [(16, 16, 16), (300, 300, 300)])
def test_only_a_large_product_calls_the_gemm_helper_wrapper(m, k, n, monkeypatch):
    # runtime/native.py `matmul` takes products of more than BLAS_SMALL multiply-adds (the rest
    # is NumPy's own `@`): the generated code of a smaller one calls NumPy's directly, with no
    # wrapper call per product. A large one gives the helper's bits (native code's: NumPy's
    # OpenBLAS at one thread, halves on adjit's helper thread; they may differ from NumPy's
    # threaded `@` in the last bits), linked before the first product under deterministic
    from adjit.ir import parse_graph
    from adjit.runtime import native
    monkeypatch.setenv("ADJIT_TIER", "deterministic")
    g = parse_graph(
        f"def f(a: f64[{m},{k}], b: f64[{k},{n}]) -> f64[{m},{n}]:\n"
        f"  c: f64[{m},{n}] = dot_general[contract=((1,), (0,)), batch=((), ())] a b\n"
        f"  return c\n")
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    fn, loop, gen = _plan_runs(g, [a, b])
    big = m * k * n > native.BLAS_SMALL
    assert loop == gen == [_bits(native.matmul(a, b) if big else a @ b)]
    np.testing.assert_allclose(native.matmul(a, b) if big else a @ b, a @ b, rtol=1e-12,
                               atol=1e-12)
    assert ("_mm(" in fn.source) == big and ("@" in fn.source) == (not big), fn.source
