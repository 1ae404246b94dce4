"""ADJIT_TIER (runtime/__init__.py): the interpreter tier, compiles in the worker process, and the
switch to native code. Each graph reads the mode on its first run, so every test makes new ones."""
from __future__ import annotations

import time

import numpy as np
import pytest

import adjit
import adjit.runtime as runtime
from adjit.runtime import background, cache
from adjit.runtime.call import CompiledGraph


_SHAPES = iter(range(3, 1000))


def _graph(scale):
    # a graph of its own per test (a batch size no other test uses), so no cache holds it
    f = adjit.value_and_grad(lambda w, x: np.sum(np.tanh(x @ w) ** 2) * scale)
    n = next(_SHAPES) + 97 * (id(_SHAPES) % 89)
    w, x = np.linspace(-1, 1, 12).reshape(4, 3), np.linspace(0, 2, 4 * n).reshape(n, 4)
    return adjit.make_ir(f)(w, x), [w, x]


def _want(g, args):
    from adjit.ir.graph import eval_graph
    return eval_graph(g, args)


def _close(a, b):
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12)


def test_interp_tier_matches_and_compiles_nothing(monkeypatch):
    monkeypatch.setenv("ADJIT_TIER", "interp")
    g, args = _graph(1.25)
    before = dict(cache.STATS)
    for _ in range(30):
        _close(runtime.run_graph(g, args), _want(g, args))
    assert isinstance(g.native, runtime.Interpreted)
    assert cache.STATS["compiles"] == before["compiles"]
    assert cache.STATS["background_compiles"] == before["background_compiles"]


def test_deterministic_tier_switches_at_the_fixed_call(monkeypatch):
    monkeypatch.setenv("ADJIT_TIER", "deterministic")
    g, args = _graph(1.5)
    for k in range(1, runtime.HOT_CALLS):
        _close(runtime.run_graph(g, args), _want(g, args))
        assert isinstance(g.native, runtime.Interpreted), k
    _close(runtime.run_graph(g, args), _want(g, args))  # waits for the worker's code
    assert isinstance(g.native, CompiledGraph)


def _until_native(g, args, seconds=120):
    t0 = time.time()
    while not isinstance(g.native, CompiledGraph):
        assert time.time() - t0 < seconds, "never switched to native code"
        _close(runtime.run_graph(g, args), _want(g, args))  # every call answers meanwhile
        time.sleep(0.01)


def test_auto_tier_compiles_off_the_callers_path(monkeypatch, tmp_path):
    monkeypatch.setenv("ADJIT_TIER", "auto")
    monkeypatch.setenv("ADJIT_CACHE_DIR", str(tmp_path))  # no entry: interpreted until hot
    g, args = _graph(1.75)
    before = cache.STATS["background_compiles"] + cache.STATS["disk_hits"]
    for _ in range(runtime.HOT_CALLS - 1):
        runtime.run_graph(g, args)
    assert isinstance(g.native, runtime.Interpreted)  # not hot yet: nothing asked for
    _until_native(g, args)
    _close(runtime.run_graph(g, args), _want(g, args))
    assert cache.STATS["background_compiles"] + cache.STATS["disk_hits"] > before


def test_a_killed_worker_is_restarted_and_calls_still_answer(monkeypatch):
    monkeypatch.setenv("ADJIT_TIER", "auto")
    comp = background.compiler()
    g, args = _graph(2.25)
    for _ in range(runtime.HOT_CALLS):
        runtime.run_graph(g, args)
    comp.kill()  # whatever it was compiling is lost
    started = comp.started
    _until_native(g, args)
    assert comp.started > started  # a new worker took the job the killed one lost


@pytest.mark.parametrize("mode", ["bogus"])
def test_an_unknown_tier_is_refused(monkeypatch, mode):
    monkeypatch.setenv("ADJIT_TIER", mode)
    with pytest.raises(ValueError, match="ADJIT_TIER"):
        runtime.tier_mode()


def test_the_worker_retires_after_its_compile_budget(monkeypatch):
    # LLVM's pass pipeline keeps ~80 KB per module in the process that runs it, so the worker
    # exits after ADJIT_WORKER_MAX_COMPILES compiles and the client starts a fresh one
    monkeypatch.setenv("ADJIT_TIER", "deterministic")
    monkeypatch.setenv("ADJIT_WORKER_MAX_COMPILES", "2")
    comp = background.compiler()
    comp.kill()  # the next worker starts with the budget above
    started = comp.started
    for scale in (3.25, 3.5, 3.75, 4.25, 4.5):
        g, args = _graph(scale)
        for _ in range(runtime.HOT_CALLS):
            _close(runtime.run_graph(g, args), _want(g, args))
        assert isinstance(g.native, CompiledGraph)
    assert comp.started >= started + 3  # 5 compiles, 2 per worker
    comp.kill()  # later tests get a worker with the default budget


# --- compile="eager" and Jitted.compile: native code before the call returns ---------------

def _mlp_step(w, x):
    return np.sum(np.tanh(x @ w) ** 2)


def _inputs(n):
    return np.linspace(-1, 1, 12).reshape(4, 3), np.linspace(0, 2, 4 * n).reshape(n, 4)


def _numpy_grad(w, x):  # d/dw sum(tanh(x w)^2) by hand
    t = np.tanh(x @ w)
    return x.T @ (2 * t * (1 - t * t))


@pytest.mark.parametrize("mode", ["auto", "deterministic"])
def test_jit_compile_eager_is_native_after_the_first_call(monkeypatch, mode):
    monkeypatch.setenv("ADJIT_TIER", mode)
    jf = adjit.jit(adjit.grad(_mlp_step), compile="eager")
    w, x = _inputs(next(_SHAPES) + 1000)
    np.testing.assert_allclose(jf(w, x), _numpy_grad(w, x), rtol=1e-12)  # traced, compiled
    (br,) = next(iter(jf.cache.values()))
    assert isinstance(br.graph.native, CompiledGraph)
    np.testing.assert_allclose(jf(w, x), _numpy_grad(w, x), rtol=1e-12)
    assert jf.stats()["compile_seconds"] > 0


@pytest.mark.parametrize("traced_before", [False, True])
def test_jitted_compile_makes_the_variant_native(monkeypatch, tmp_path, traced_before):
    monkeypatch.setenv("ADJIT_TIER", "auto")
    # a cache of its own: another test's entry for this structure would link at the first call
    monkeypatch.setenv("ADJIT_CACHE_DIR", str(tmp_path))
    jf = adjit.jit(adjit.grad(_mlp_step))
    w, x = _inputs(next(_SHAPES) + 1000)
    if traced_before:  # an interpreted variant already exists: compile() compiles that one
        jf(w, x)
        jf(w, x)
        (br,) = next(iter(jf.cache.values()))
        assert isinstance(br.graph.native, runtime.Interpreted)
    assert jf.compile(w, x) is jf
    (br,) = next(iter(jf.cache.values()))
    assert isinstance(br.graph.native, CompiledGraph)
    assert jf.traces == 1
    np.testing.assert_allclose(jf(w, x), _numpy_grad(w, x), rtol=1e-12)


def test_jit_compile_keyword_is_checked():
    with pytest.raises(ValueError, match="compile='later'"):
        adjit.jit(_mlp_step, compile="later")
    with pytest.raises(ValueError, match="compile="):
        adjit.jit(compile=True)(_mlp_step)


def test_compile_eager_under_interp_compiles_nothing(monkeypatch):
    monkeypatch.setenv("ADJIT_TIER", "interp")
    jf = adjit.jit(adjit.grad(_mlp_step), compile="eager")
    w, x = _inputs(next(_SHAPES) + 1000)
    before = cache.STATS["compiles"]
    jf.compile(w, x)
    np.testing.assert_allclose(jf(w, x), _numpy_grad(w, x), rtol=1e-12)
    (br,) = next(iter(jf.cache.values()))
    assert isinstance(br.graph.native, runtime.Interpreted)
    assert cache.STATS["compiles"] == before



def test_compile_in_one_thread_does_not_compile_another_threads_call(monkeypatch, tmp_path):
    # jf.compile(a) compiles a's variant; a call of another variant from another thread while
    # that compile runs keeps the usual tier (interpreted first), so exactly one compile
    import threading
    monkeypatch.setenv("ADJIT_TIER", "auto")
    monkeypatch.setenv("ADJIT_CACHE_DIR", str(tmp_path))  # no disk entry: real compiles
    inside, other_done, errors = threading.Event(), threading.Event(), []

    def step(w, x):
        if x.shape[0] == n_a:  # traced by compile()'s thread: let the other thread call now
            inside.set()
            assert other_done.wait(60)
        return _mlp_step(w, x)
    jf = adjit.jit(adjit.grad(step))
    n_a = next(_SHAPES) + 1000
    (w, xa), (_, xb) = _inputs(n_a), _inputs(n_a + 1)

    def other():
        try:
            assert inside.wait(60)
            np.testing.assert_allclose(jf(w, xb), _numpy_grad(w, xb), rtol=1e-12)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            other_done.set()
    t = threading.Thread(target=other)
    before = cache.STATS["compiles"]
    t.start()
    jf.compile(w, xa)
    t.join()
    assert not errors, errors
    natives = {br.graph.invars[1].type.shape[0]: br.graph.native
               for brs in jf.cache.values() for br in brs}
    assert isinstance(natives[n_a], CompiledGraph)
    assert isinstance(natives[n_a + 1], runtime.Interpreted)  # not compiled by a's compile()
    assert cache.STATS["compiles"] - before == 1


# --- the interpreter: optimised graph, dead values freed, buffers reused -------------------

def _plan_of(f, *args):
    from adjit.ir.passes import optimize
    from adjit.runtime.interpreter import Plan
    opt = optimize(adjit.make_ir(f)(*args))
    return Plan(opt), opt


def test_interpreter_reuses_dead_intermediates_and_never_an_argument():
    from adjit.runtime import interpreter
    x = np.linspace(-3, 3, 20_001)
    keep = x.copy()
    plan, opt = _plan_of(adjit.grad(lambda x: np.sum(np.sin(x) * x + np.tanh(x) ** 2)), x)
    assert sum(s[5] is not None for s in plan.steps) >= 4  # candidates for `out=`
    n = [0]
    into = interpreter._into

    def spy(reuse, vals):
        r = into(reuse, vals)
        n[0] += r is not None
        assert all(r is not v for v in [x] + [getattr(c, "val", c) for c in opt.consts])
        return r
    try:
        interpreter._into = spy
        (got,) = plan([x], opt.consts)
    finally:
        interpreter._into = into
    assert n[0] >= 4
    np.testing.assert_array_equal(x, keep)  # the argument is never written
    t = np.tanh(x)  # NumPy by hand, the same operations in the same order: the same bits
    want = 2.0 * t * (1.0 - t * t) + np.sin(x) + x * np.cos(x)
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=1e-15)


def test_interpreter_does_not_write_into_a_buffer_a_view_still_reads():
    # b = exp(x) dies at `add`, but the reshape r of it lives on: b must not be overwritten
    from adjit.ir import parse_graph
    from adjit.runtime.interpreter import Plan
    g = parse_graph(
        "def f(a: f64[6]) -> (f64[6], f64[2,3]):\n"
        "  b: f64[6] = exp a\n"
        "  r: f64[2,3] = reshape[shape=(2, 3)] b\n"
        "  c: f64[6] = add b 1.0\n"
        "  return c, r\n")
    x = np.linspace(0, 1, 6)
    c, r = Plan(g)([x], [])
    np.testing.assert_array_equal(c, np.exp(x) + 1.0)
    np.testing.assert_array_equal(r, np.exp(x).reshape(2, 3))


def test_interpreted_peak_memory_follows_the_live_set():
    import tracemalloc
    n = 1_000_000
    x = np.linspace(-3, 3, n)
    plan, opt = _plan_of(lambda x: np.tanh(np.sin(np.exp(-x * x) * 2.0 + 1.0) ** 2) - x, x)
    plan([x], opt.consts)
    tracemalloc.start()
    try:
        plan([x], opt.consts)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # one result buffer, rewritten in place by each equation (NumPy by hand would hold >= 2)
    assert peak < 1.5 * 8 * n, peak


# --- one compile per structure, whatever the threads; exit and fork while compiling --------

@pytest.mark.parametrize("mode", ["native", "auto", "deterministic"])
def test_a_structure_is_compiled_once_with_8_threads_calling(monkeypatch, tmp_path, mode):
    import threading
    monkeypatch.setenv("ADJIT_TIER", mode)
    monkeypatch.setenv("ADJIT_CACHE_DIR", str(tmp_path))  # no disk entry: a real compile
    sends = []
    send = background.Compiler._send
    monkeypatch.setattr(background.Compiler, "_send",
                        lambda self, job: (sends.append(getattr(job, "payload", job.skey)),
                                           send(self, job))[1])
    g, args = _graph(3.25)
    want = _want(g, args)
    before = cache.STATS["compiles"] + cache.STATS["background_compiles"]
    if mode != "native":
        for _ in range(runtime.HOT_CALLS - 1):
            runtime.run_graph(g, args)
    start, errors = threading.Barrier(8), []

    def call():
        try:
            start.wait()
            t0 = time.time()
            while True:
                _close(runtime.run_graph(g, args), want)
                if isinstance(g.native, CompiledGraph) or time.time() - t0 > 120:
                    break
                time.sleep(0.005)
            _close(runtime.run_graph(g, args), want)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert isinstance(g.native, CompiledGraph)
    assert cache.STATS["compiles"] + cache.STATS["background_compiles"] == before + 1
    # one request to the compile worker in every mode (native: the caller waits for it);
    # the runtime helpers' LLVM IR, if they were not loaded yet, is a request of its own
    # (a graph: its text, or ("optimize", text) for a graph sent as traced)
    assert len([p for p in sends if isinstance(p, str) or p[0] == "optimize"]) == 1, sends


_WHILE_COMPILING = """
import os, sys, time
import numpy as np
import adjit, adjit.runtime as runtime
from adjit.runtime import background
from adjit.runtime.call import CompiledGraph
f = adjit.value_and_grad(lambda w, x: np.sum(np.tanh(x @ w) ** 2) * 1.125)
w, x = np.linspace(-1, 1, 12).reshape(4, 3), np.linspace(0, 2, 4 * 977).reshape(977, 4)
g = adjit.make_ir(f)(w, x)
for _ in range(runtime.HOT_CALLS + 1):  # the call after the 20th asks for code
    runtime.run_graph(g, [w, x])
job = background.compiler()._jobs.get(g.native.key())
assert job is not None and job.state == "pending", job and job.state
t0 = time.time()
while background.compiler()._proc is None:  # the request goes out from a thread
    assert time.time() - t0 < 30
    time.sleep(0.001)
print(background.compiler()._proc.pid, flush=True)
"""


def _until_native_in(name):
    return f"""
t0 = time.time()
while not isinstance(g.native, CompiledGraph):
    assert time.time() - t0 < 120, "{name}: never native"
    runtime.run_graph(g, [w, x])
    time.sleep(0.01)
want = np.sum(np.tanh(x @ w) ** 2) * 1.125
assert abs(runtime.run_graph(g, [w, x])[0] - want) <= 1e-12 * abs(want)
"""


def _gone(pid, seconds=30):
    import os
    t0 = time.time()
    while time.time() - t0 < seconds:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # a zombie of ours counts as gone (its parent, the subprocess, has exited)
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().split()[2] == "Z":
                    return True
        except OSError:
            return True
        time.sleep(0.1)
    return False


def test_exit_while_compiling_is_clean(tmp_path):
    import subprocess
    import sys
    env = dict(__import__("os").environ, ADJIT_TIER="auto", ADJIT_CACHE_DIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-c", _WHILE_COMPILING + "sys.exit(0)\n"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert _gone(int(r.stdout.split()[0])), "the compile worker outlived its process"


def test_fork_while_compiling_is_clean(tmp_path):
    import subprocess
    import sys
    env = dict(__import__("os").environ, ADJIT_TIER="auto", ADJIT_CACHE_DIR=str(tmp_path))
    code = _WHILE_COMPILING + """
pid = os.fork()
if pid == 0:  # the child: the parent's worker is not ours; the job is dropped and resubmitted
    try:
        assert background.compiler()._proc is None
""" + "".join("        " + ln + "\n" for ln in _until_native_in("child").strip().splitlines()) + """
    except BaseException as exc:
        print("child:", repr(exc), file=sys.stderr, flush=True)
        os._exit(1)
    os._exit(0)
""" + _until_native_in("parent") + """
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, status
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0 and r.stderr == "", r.stderr



_DISK_PROGRAM = """
import sys, time
import numpy as np
import adjit
import adjit.runtime as runtime
from adjit.runtime import cache
from adjit.runtime.call import CompiledGraph
loss = lambda w, x: np.sum(np.tanh(x @ w) ** 2) * 1.375
w, x = np.linspace(-1, 1, 12).reshape(4, 3), np.linspace(0, 2, 4 * 613).reshape(613, 4)
t = np.tanh(x @ w)
want = x.T @ (2 * t * (1 - t * t)) * 1.375  # NumPy by hand
g = adjit.make_ir(adjit.grad(loss))(w, x)
jf = adjit.jit(adjit.grad(lambda w, x: loss(w, x) * 2.0))  # another structure
if sys.argv[1] == "warm":  # hot: compiled by the worker, which writes the disk entry
    t0 = time.time()
    while not (isinstance(g.native, CompiledGraph) and
               isinstance(jf.cache and next(iter(jf.cache.values()))[0].graph.native,
                          CompiledGraph)):
        assert time.time() - t0 < 120, "never native"
        runtime.run_graph(g, [w, x])
        jf(w, x)
        runtime.wait_for_compiles(60)
    print(cache.STATS["background_compiles"])
else:  # a new process: the entry on disk is linked without a compile
    import threading
    on_caller = []  # whether each link ran on the calling (main) thread
    init = CompiledGraph.__init__

    def init_(cg, *a, **k):
        on_caller.append(threading.get_ident() == threading.main_thread().ident)
        init(cg, *a, **k)
    CompiledGraph.__init__ = init_
    if sys.argv[1] == "at-once":  # every graph's interpreted call costs more than a link
        runtime.LOAD_AT_ONCE_WORK = 0
    (got,) = runtime.run_graph(g, [w, x])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    first = type(g.native).__name__
    jf(w, x)  # the tracing call: it prepares nothing (no key, no cache look-up)
    (br,) = next(iter(jf.cache.values()))
    np.testing.assert_allclose(jf(w, x), 2.0 * want, rtol=1e-12)  # its graph's first run
    second = type(br.graph.native).__name__
    runtime.wait_for_compiles(120)  # the worker's answers (entries it read), linked
    (got,) = runtime.run_graph(g, [w, x])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(jf(w, x), 2.0 * want, rtol=1e-12)
    print(first, second, type(g.native).__name__, type(br.graph.native).__name__,
          "caller" if any(on_caller) else "off", cache.STATS["disk_hits"],
          cache.STATS["compiles"], cache.STATS["background_compiles"])
"""


def test_a_disk_cache_entry_is_linked_without_a_compile(tmp_path, monkeypatch):
    # issue 18: under auto, a structure an earlier process compiled (hot there) runs native
    # code in a new process without a compile: a small graph's entry is read by the worker and
    # linked off the caller's thread while its first calls run interpreted (linking it on the
    # caller's thread made that call the slowest of all); a graph whose interpreted call costs
    # more than a link (LOAD_AT_ONCE_WORK) links it on its first run
    import subprocess
    import sys
    monkeypatch.setenv("ADJIT_CACHE_DIR", str(tmp_path))

    def run(mode, phase):
        env = dict(__import__("os").environ, ADJIT_TIER=mode)
        r = subprocess.run([sys.executable, "-c", _DISK_PROGRAM, phase], capture_output=True,
                           text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr
        return r.stdout.split()
    assert int(run("auto", "warm")[0]) == 2  # both structures compiled by the worker
    assert run("auto", "load") == ["Interpreted", "Interpreted", "CompiledGraph",
                                   "CompiledGraph", "off", "2", "0", "0"]
    assert run("auto", "at-once") == ["CompiledGraph"] * 4 + ["caller", "2", "0", "0"]
    # deterministic keeps its fixed switch point: nothing loads before the HOT_CALLS-th call
    assert run("deterministic", "load")[:4] == ["Interpreted"] * 4
    # cache_clear(disk=True) removes the entries and their hot marks: interpreted again
    assert len(list((tmp_path / "hot").iterdir())) == 2
    cache.cache_clear(disk=True)
    assert not any((tmp_path / "hot").iterdir())
    assert run("auto", "load")[:4] == ["Interpreted"] * 4



def test_a_hot_mark_without_a_usable_entry_interprets(monkeypatch, tmp_path):
    # a mark whose entry is missing (another version or CPU wrote it), or LLVM failing to
    # start: the first call answers on the interpreter, as without the mark
    from adjit.runtime import engine
    monkeypatch.setenv("ADJIT_TIER", "auto")
    monkeypatch.setenv("ADJIT_CACHE_DIR", str(tmp_path))
    for broken in (False, True):
        g, args = _graph(5.25 + broken)
        cache.mark_hot(g.structure_key())  # the first run checks the traced graph's mark
        if broken:
            monkeypatch.setattr(engine, "engine", lambda: 1 / 0)
        _close(runtime.run_graph(g, args), _want(g, args))
        assert isinstance(g.native, runtime.Interpreted)


# --- the fallback warning: "cannot compile", never "not compiled yet" ----------------------

@pytest.mark.parametrize("mode", ["auto", "deterministic"])
def test_only_a_failed_compile_warns(monkeypatch, mode):
    import warnings
    monkeypatch.setenv("ADJIT_TIER", mode)
    monkeypatch.setattr(runtime, "_CANNOT_COMPILE_WARNED", set())
    monkeypatch.setattr(background.Compiler, "_send",
                        lambda self, job: job.finish("error", message="test failure"))
    g, args = _graph(4.5)
    want = _want(g, args)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # interpreted while not compiled yet: no warning
        for _ in range(runtime.HOT_CALLS - 1):
            _close(runtime.run_graph(g, args), want)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        t0 = time.time()
        while not g.native.final:  # asked for code when hot; the answer: cannot compile
            assert time.time() - t0 < 60
            _close(runtime.run_graph(g, args), want)
        for _ in range(5):
            _close(runtime.run_graph(g, args), want)
    msgs = [str(x.message) for x in w]
    assert len(msgs) == 1 and "test failure" in msgs[0] and "interpreter" in msgs[0], msgs


def test_not_compiled_yet_never_warns(monkeypatch):
    import warnings
    monkeypatch.setenv("ADJIT_TIER", "auto")
    g, args = _graph(4.75)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _until_native(g, args)


def test_a_throwaway_primitive_compiles_in_this_process(monkeypatch):
    # the worker does not know a primitive registered for a test: this process compiles it
    from adjit.ir.core import registered
    from adjit.ir.prims._helpers import unary_prim
    monkeypatch.setenv("ADJIT_TIER", "deterministic")
    twice = unary_prim("tiers_twice", lambda x, **_: x * 2.0, None,
                       lowering=("expr", lambda e, x: e.add(x, x)), numpy=())
    with registered(twice):
        from adjit.ir import parse_graph
        g = parse_graph("def f(a: f64[5]) -> f64[5]:\n  b: f64[5] = tiers_twice a\n"
                        "  return b\n")
        x = np.linspace(0, 1, 5)
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for _ in range(runtime.HOT_CALLS):
                np.testing.assert_array_equal(runtime.run_graph(g, [x])[0], x * 2.0)
        assert isinstance(g.native, CompiledGraph)


# --- tiers agree ---------------------------------------------------------------------------

def _both_tiers(f, args):
    """f's graph run by deterministic mode: (the interpreted results, the native results)."""
    g = adjit.make_ir(f)(*args)
    interp = [runtime.run_graph(g, list(args)) for _ in range(runtime.HOT_CALLS - 1)]
    assert isinstance(g.native, runtime.Interpreted)
    native = [runtime.run_graph(g, list(args)) for _ in range(3)]
    assert isinstance(g.native, CompiledGraph)
    for a, b in zip(interp, interp[1:]):  # each tier is deterministic in itself
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    return interp[0], native[0]


def test_tiers_agree_bitwise_on_exact_operations(monkeypatch):
    monkeypatch.setenv("ADJIT_TIER", "deterministic")
    n = next(_SHAPES) + 2000
    x = np.random.default_rng(1).standard_normal(n)
    y = np.random.default_rng(2).uniform(0.5, 2.0, n)

    def f(x, y):
        return np.maximum(x * y - x / (y + 1.0), 0.25) + np.sqrt(y) * x, np.where(x > y, x, -y)
    (a1, a2), (b1, b2) = _both_tiers(f, (x, y))
    want1 = np.maximum(x * y - x / (y + 1.0), 0.25) + np.sqrt(y) * x  # NumPy by hand
    for got in (a1, b1):
        assert got.tobytes() == want1.tobytes()
    for got in (a2, b2):
        assert got.tobytes() == np.where(x > y, x, -y).tobytes()


def test_tiers_agree_within_the_documented_bounds(monkeypatch):
    # math functions: the ulp bounds of docs/codegen.md (tanh 3, sin 2 in f64); a sum:
    # reassociation, bounded by n * eps * sum(|terms|)
    monkeypatch.setenv("ADJIT_TIER", "deterministic")
    n = next(_SHAPES) + 3000
    x = np.random.default_rng(3).uniform(-3, 3, n)
    f = adjit.value_and_grad(lambda x: np.sum(np.sin(x) * x + np.tanh(x) ** 2))
    (va, ga), (vb, gb) = _both_tiers(f, (x,))
    t = np.tanh(x)
    gwant = np.cos(x) * x + np.sin(x) + 2 * t * (1 - t * t)
    terms = np.sin(x) * x + t * t
    eps = np.finfo(np.float64).eps
    bound = 16 * eps * (np.abs(x) + 4)  # a few ulp of each term (|x cos x|, |sin|, 2|t|)
    for v, g in ((va, ga), (vb, gb)):
        assert abs(v - terms.sum()) <= n * eps * np.abs(terms).sum()
        assert np.all(np.abs(g - gwant) <= bound), np.max(np.abs(g - gwant) / bound)
    assert np.all(np.abs(ga - gb) <= 2 * bound)


# --- ADJIT_TIER=native compiles in the worker; in this process only when it cannot run -------

def test_native_tier_compiles_here_when_the_worker_cannot_run(monkeypatch, tmp_path):
    import sys
    monkeypatch.setenv("ADJIT_TIER", "native")
    monkeypatch.setenv("ADJIT_CACHE_DIR", str(tmp_path))  # no disk entry: a real compile
    # a "worker" that exits at once: every request is lost, asked once more, then compiled here
    monkeypatch.setattr(background, "WORKER_COMMAND", [sys.executable, "-c", "pass"])
    monkeypatch.setattr(background, "_SYNC_COMPILER", background.Compiler(nice=0))
    g, args = _graph(5.75)
    want = _want(g, args)
    before = dict(cache.STATS)
    _close(runtime.run_graph(g, args), want)
    assert isinstance(g.native, CompiledGraph)
    assert cache.STATS["compiles"] == before["compiles"] + 1
    assert background._SYNC_COMPILER.started >= 1
    _close(runtime.run_graph(g, args), want)


def test_sending_while_the_worker_writes_answers_does_not_deadlock(monkeypatch):
    # A worker that reads two requests, then writes both answers (the second bigger than a
    # pipe's buffer) before reading more; meanwhile a third, big request is being written.
    # With the compiler's bookkeeping lock held across that write, the reader thread (which
    # needs the lock after the first answer) stopped draining the worker's output, the worker
    # blocked writing the second answer and never read the third request: every thread of
    # the process that touched the compiler hung (seen in a full test run).
    import sys
    import threading
    import time
    from adjit.runtime import background
    code = ("import sys, time\n"
            "from adjit.runtime.worker import read_message, write_message\n"
            "inp, out = sys.stdin.buffer, sys.stdout.buffer\n"
            "a, b = read_message(inp), read_message(inp)\n"
            "time.sleep(0.5)\n"
            "write_message(out, (a[0], 'ok', a[1], b'x', {}))\n"
            "write_message(out, (b[0], 'ok', b[1], b'y' * (1 << 21), {}))\n"
            "while True:\n"
            "    m = read_message(inp)\n"
            "    if m is None:\n"
            "        break\n"
            "    write_message(out, (m[0], 'ok', m[1][1], b'z', {}))\n")
    monkeypatch.setattr(background, "WORKER_COMMAND", [sys.executable, "-c", code])
    comp = background.Compiler(nice=0)
    try:
        got = {}

        def ask(name, payload=None):
            got[name] = comp.request(name, payload)  # as compile_llvm / compile_graph_object
        threads = []
        for name, payload in (("a", None), ("b", None), ("c", ("llvm", "c", "p" * (1 << 21), {}))):
            threads.append(threading.Thread(target=ask, args=(name, payload), daemon=True))
            threads[-1].start()
            time.sleep(0.1)  # sent in this order
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads), "a request never answered: deadlock"
        assert [got[k].state for k in "abc"] == ["ready"] * 3
        assert len(got["b"].obj) == 1 << 21 and got["c"].obj == b"z"
    finally:
        if comp._proc is not None:  # not comp.kill(): a deadlocked compiler holds its lock
            comp._proc.kill()


# --- a worker that cannot start: backed off, not started again on every call ----------------

def _count_spawns(monkeypatch):
    """The list of worker starts tried from now on (failed ones included)."""
    spawns = []

    class Counted(background._Proc):
        def __init__(self, *a):
            spawns.append(a)
            super().__init__(*a)
    monkeypatch.setattr(background, "_Proc", Counted)
    return spawns


@pytest.mark.parametrize("command", ["exits", "missing"])
def test_an_unstartable_worker_is_not_started_again_on_every_call(monkeypatch, tmp_path,
                                                                  command):
    # A worker that exits at once with a status (adjit not importable there, say) or whose
    # executable does not exist: its jobs are lost; the graph's next calls used to submit
    # them again, a new thread and process each (a missing executable: an OSError traceback
    # from the job's thread and a job pending for ever). Now the start is tried again only
    # after a delay (background.START_BACKOFF), and every call answers, interpreted.
    import sys
    monkeypatch.setenv("ADJIT_TIER", "auto")
    monkeypatch.setenv("ADJIT_CACHE_DIR", str(tmp_path))  # no entry: the worker is needed
    argv = ([sys.executable, "-c", "import sys; sys.exit(3)"] if command == "exits" else
            [str(tmp_path / "no-such-python"), "-c", "pass"])
    monkeypatch.setattr(background, "WORKER_COMMAND", argv)
    monkeypatch.setattr(background, "START_BACKOFF", 3.0, raising=False)
    comp = background.Compiler()
    monkeypatch.setattr(background, "_COMPILER", comp)
    spawns = _count_spawns(monkeypatch)
    g, args = _graph(6.25)
    want = _want(g, args)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.5:  # hot from the 20th call, then ~1.5 s of calls
        _close(runtime.run_graph(g, args), want)
        time.sleep(0.002)
    assert isinstance(g.native, runtime.Interpreted)
    assert len(spawns) == 1, len(spawns)
    (job,) = comp._jobs.values()
    assert job.state == "lost"
    # the delay over, a worker that can start is tried again and the graph turns native
    monkeypatch.setattr(background, "WORKER_COMMAND", None)
    time.sleep(max(0.0, t0 + 3.2 - time.monotonic()))
    try:
        _until_native(g, args)
        assert len(spawns) == 2
    finally:
        comp.kill()


def test_a_synchronous_compile_with_an_unstartable_worker_compiles_here(monkeypatch,
                                                                        tmp_path):
    # ADJIT_TIER=native with a worker whose executable is missing: compiled in this process
    # (it used to raise the spawn's FileNotFoundError into the user's call)
    monkeypatch.setenv("ADJIT_TIER", "native")
    monkeypatch.setenv("ADJIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(background, "WORKER_COMMAND", [str(tmp_path / "no-such-python")])
    monkeypatch.setattr(background, "_SYNC_COMPILER", background.Compiler(nice=0))
    spawns = _count_spawns(monkeypatch)
    for scale in (6.5, 6.75):  # two graphs: the second does not try the worker again
        g, args = _graph(scale)
        want = _want(g, args)
        for _ in range(3):
            _close(runtime.run_graph(g, args), want)
        assert isinstance(g.native, CompiledGraph)
    assert len(spawns) == 1


def test_kill_never_signals_a_worker_already_reaped(monkeypatch):
    # _Proc.kill used to check "not exited" without the reaping lock, then signal the pid: a
    # thread reaping the worker meanwhile freed the pid, which the system may give to another
    # process, which got the SIGKILL. Now the check and the signal hold the lock reaping takes.
    import os
    import sys
    import threading
    proc = background._Proc([sys.executable, "-c", "import sys; sys.stdin.read()"],
                            dict(os.environ))
    reaped = threading.Event()
    real_waitpid, real_kill = os.waitpid, os.kill
    signals = []

    def waitpid(pid, flags):
        r = real_waitpid(pid, flags)
        if pid == proc.pid and r[0] == pid:
            reaped.set()  # the pid is free (and may be reused) from here on
            time.sleep(0.3)
        return r

    def kill(pid, sig):
        signals.append((pid, reaped.is_set()))
        if not reaped.is_set():
            real_kill(pid, sig)
    monkeypatch.setattr(os, "waitpid", waitpid)
    monkeypatch.setattr(os, "kill", kill)
    t = threading.Thread(target=proc.wait, daemon=True)
    t.start()
    proc.stdin.close()  # the worker exits; the thread above reaps it
    assert reaped.wait(30)
    proc.kill()
    t.join(30)
    assert not [s for s in signals if s[1]], signals  # no signal after the pid was freed
    assert proc.returncode == 0
