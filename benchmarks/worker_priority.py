"""How much a compile in a background process slows the foreground, per nice level of the
compiler (docs/speed.md, "Compile worker priority"; issue 18 items 3 and 5).

    python benchmarks/worker_priority.py 0 5 10 19
    python benchmarks/worker_priority.py --link [--jobs 8] [--rounds 3]

Foreground: `jit(value_and_grad)` of W4's function on 1M elements (nests on 2 threads), median
call time alone, then while a process at the given nice level compiles chain-1000 over and
over (benchmarks/compile_scaling.py); prints both and the background's compile times.

`--link`: what the user's process's own part of a background compile costs its foreground
(issue 18 item 3): reading the object code and linking it (runtime/background.py: a link
thread running elfload and CompiledGraph, Python that holds the GIL). Each round has the
worker compile `--jobs` distinct graphs (chain-300 with distinct constants, cold disk cache;
`compile`: the worker's wall time per graph), then links them one after the other from the
disk cache through `Compiler.submit` (a disk hit: read + link, the thread the worker's
answers use doing the same link) while the foreground runs a loop of small calls (a native
`jit(value_and_grad)` step on 200 elements plus a little Python, ~5 us, GIL held
throughout). `lost`: the foreground's calls missing during the links against its rate just
before and after, as time per link; `CPU`: the other threads' CPU time per link (what holds
the GIL); `lost / compile`: the slowdown the link adds to the foreground over one compile.
Medians over the rounds.
"""
import os, sys, time, subprocess
import numpy as np
os.environ["ADJIT_TIER"] = "native"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import adjit  # noqa: E402


def link_cost(jobs=20, rounds=3):
    import tempfile, threading
    os.environ["ADJIT_TIER"] = "auto"
    os.environ["ADJIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="adjit-link-gil-")
    from adjit.ir.passes import optimize
    from adjit.runtime import background
    serial = iter(range(10 ** 6))

    def graph():
        i = next(serial)

        def f(x):
            for j in range(60):
                y = np.sin(x) * (1.0 + 1e-3 * j + 1e-7 * i)
                x = y + (np.tanh(x) if j % 2 else np.exp(-x * x)) * 0.5
            return x
        return optimize(adjit.make_ir(f)(np.linspace(-1, 1, 256)))

    def fg(x):
        return np.sum(np.sin(x) * x + np.tanh(x) ** 2)
    step = adjit.jit(adjit.value_and_grad(fg), compile="eager")
    x = np.linspace(-1, 1, 200)

    def work(n):
        for _ in range(n):
            step(x)
            s = 0
            for i in range(100):
                s += i

    def rate(sec):
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < sec:
            work(20)
            n += 20
        return n / (time.perf_counter() - t0)

    work(300)  # step compiled, its fast path made
    comp = background.compiler()
    rows = []
    for _ in range(rounds):
        gs = [graph() for _ in range(jobs)]
        keys = [g.structure_key() for g in gs]
        t0 = time.perf_counter()
        for k in keys:
            background.compile_graph_object(k, "chain-300")  # the worker writes the entry
        compile_s = (time.perf_counter() - t0) / jobs
        done = threading.Event()

        def linker():
            for k, g in zip(keys, gs):
                assert comp.submit(k, g).done.wait(60)
            done.set()
        r0 = rate(0.5)
        p0, f0, t0 = time.process_time(), time.thread_time(), time.perf_counter()
        threading.Thread(target=linker, daemon=True).start()
        n = 0
        while not done.is_set():
            work(20)
            n += 20
        win = time.perf_counter() - t0
        other = (time.process_time() - p0) - (time.thread_time() - f0)
        r = (r0 + rate(0.5)) / 2
        lost = (win - n / r) / jobs
        rows.append((lost, other / jobs, compile_s))
        print(f"  round: {jobs} links in {1e3 * win:.0f} ms, foreground {r:.0f} -> "
              f"{n / win:.0f} calls/s, lost {1e3 * lost:.2f} ms per link; load "
              f"{os.getloadavg()[0]:.1f}", flush=True)
    lost, cpu, comp_s = (float(np.median(c)) for c in zip(*rows))
    print(f"per link: lost {1e3 * lost:.2f} ms, CPU {1e3 * cpu:.2f} ms; compile "
          f"{1e3 * comp_s:.0f} ms; lost / compile {100 * lost / comp_s:.2f}%", flush=True)


if "--link" in sys.argv:
    a = sys.argv[1:]
    kw = {k[2:]: int(a[a.index(k) + 1]) for k in ("--jobs", "--rounds") if k in a}
    link_cost(**kw)
    sys.exit(0)
BG = (r'''
import os, sys, time
os.nice(int(sys.argv[1]))
sys.path.insert(0, {bench!r})
import numpy as np, compile_scaling as cs
f, a, g = cs.chain(1000, np)
cs.adjit_compile(f, a, g)
while True:
    t0 = time.perf_counter(); f, a, g = cs.chain(1000, np); cs.adjit_compile(f, a, g)
    print(time.perf_counter() - t0, flush=True)
''').replace('{bench!r}', repr(os.path.dirname(os.path.abspath(__file__))))
def fg(x):
    return np.sum(np.sin(x) * x + np.tanh(x) ** 2)
step = adjit.jit(adjit.value_and_grad(fg))
x = np.linspace(-1, 1, 1_000_000)
for _ in range(25): step(x)
def measure(sec=4.0):
    ts = []; end = time.perf_counter() + sec
    while time.perf_counter() < end:
        t0 = time.perf_counter(); step(x); ts.append(time.perf_counter() - t0)
    return np.median(ts)
for n in [int(v) for v in sys.argv[1:]]:
    base = measure()
    p = subprocess.Popen([sys.executable, "-c", BG, str(n)], stdout=subprocess.PIPE, text=True)
    time.sleep(2.0)
    busy = measure(6.0)
    p.kill(); out = p.stdout.read().split()
    print(f"nice {n:2d}: foreground {1e3*base:.2f} -> {1e3*busy:.2f} ms ({100*(busy/base-1):+.0f}%), "
          f"worker compiles of chain-1000: {len(out)} done, {', '.join(f'{float(v):.2f}' for v in out[:4])} s; load {os.getloadavg()[0]:.1f}", flush=True)
