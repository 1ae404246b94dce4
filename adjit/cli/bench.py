"""`adjit bench`: run the workloads of adjit/bench/workloads, print a table, write JSON and a
plot. The framework (Workload, timing, checks) is adjit/bench/__init__.py."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time

from .. import bench
from .load import CLIError

_REEXEC_FLAG = "ADJIT_BENCH_THREADS"


def _reexec_with_threads(argv):
    """NumPy's BLAS sizes its thread pool when it is imported, which `import adjit` already
    did: start the command again with the thread variables set (console use only)."""
    env = dict(os.environ)
    env[_REEXEC_FLAG] = str(bench.THREADS)
    for k, v in bench.limit_threads().items():
        env[k] = v
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "adjit", *argv], env)


class Progress:
    """A progress bar on stderr (one line per step when stderr is not a terminal)."""

    def __init__(self, total, stream=None):
        self.total, self.done = max(total, 1), 0
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def step(self, label):
        self.done += 1
        frac = self.done / self.total
        bar = "#" * int(frac * 24)
        line = f"[{bar:<24}] {self.done}/{self.total} {label}"
        if self.tty:
            self.stream.write("\r" + line[:100].ljust(100))
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _fmt_time(s):
    if s is None:
        return "-"
    for unit, k in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if s >= k:
            return f"{s / k:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def table(results, workloads):
    rows = [("workload", "impl", "median", "p10", "p90", "first call", "peak RSS", "check")]
    for w in workloads:
        for r in (r for r in results if r.workload == w.name):
            if r.status in ("missing", "n/a", "error"):
                rows.append((w.name, r.impl, r.status, "", "", "", "", r.message or ""))
                continue
            rss = f"{r.peak_rss_mb:.0f} MB" if r.peak_rss_mb else "-"
            check = "ok" if r.status == "ok" else f"MISMATCH ({r.message})"
            rows.append((w.name, r.impl, _fmt_time(r.median), _fmt_time(r.p10),
                         _fmt_time(r.p90), _fmt_time(r.first), rss, check))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for k, row in enumerate(rows):
        cells = [str(c).ljust(widths[i]) for i, c in enumerate(row[:-1])] + [str(row[-1])]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths) + "  -----")
    lines.append("")
    for w in workloads:
        x, best = bench.ratio(results, w.name)
        if x is None:
            lines.append(f"{w.name} ({w.title}): adjit/best peer: n/a")
        else:
            mine = bench.adjit_row(results, w.name)
            lines.append(f"{w.name} ({w.title}): {mine}/best peer = {x:.2f}x (best: {best})")
    return "\n".join(lines)


def meta(quick):
    import numpy as np
    info = {"python": platform.python_version(), "numpy": np.__version__,
            "machine": platform.machine(), "processor": platform.processor(),
            "threads": bench.THREADS, "quick": bool(quick), "time": time.time()}
    from importlib import metadata
    for name in ("torch", "jax", "autograd", "llvmlite"):
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name] = None
    return info


def plot(results, workloads, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CLIError("--plot needs matplotlib (pip install matplotlib)") from None
    impls = [p for p in bench.PEERS if any(r.impl == p and r.median for r in results)]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(workloads) + 2), 4))
    width = 0.8 / max(len(impls), 1)
    for k, impl in enumerate(impls):
        xs, ys = [], []
        for i, w in enumerate(workloads):
            r = next((r for r in results if r.workload == w.name and r.impl == impl), None)
            if r is not None and r.median:
                xs.append(i + k * width)
                ys.append(r.median * 1e6)
        ax.bar(xs, ys, width, label=impl)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(workloads))])
    ax.set_xticklabels([f"{w.name}\n{w.title}" for w in workloads], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("median time per call (us, log scale)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _isolated(w, impl, quick):
    """Measure in a fresh process, so that its peak RSS is this implementation's alone."""
    cmd = [sys.executable, "-m", "adjit.cli.bench", w.name, impl] + (["--quick"] if quick
                                                                     else [])
    env = dict(os.environ, **bench.limit_threads())
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    try:
        d = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        err = (res.stderr.strip().splitlines() or ["no output"])[-1]
        return bench.Result(w.name, impl, "error", message=err[:200])
    return bench.Result(d.pop("workload"), d.pop("impl"), d.pop("status"), **d)


def run_command(ns):
    if getattr(ns, "from_console", False) and os.environ.get(_REEXEC_FLAG) is None:
        _reexec_with_threads(sys.argv[1:])
    bench.limit_threads()  # for peers imported from here on (torch, jax)
    try:
        found = bench.discover()
    except RuntimeError as exc:
        raise CLIError(str(exc)) from None
    if ns.list:
        for name, w in found.items():
            print(f"{name}  {w.title}")
        return 0
    names = ns.names or list(found)
    unknown = [n for n in names if n not in found]
    if unknown:
        raise CLIError(f"unknown workload {unknown[0]!r} (workloads: {', '.join(found)})")
    workloads = [found[n] for n in names]
    impls = bench.PEERS
    if ns.only:
        impls = tuple(i.strip() for i in ns.only.split(",") if i.strip())
        bad = [i for i in impls if i not in bench.PEERS]
        if bad:
            raise CLIError(f"unknown implementation {bad[0]!r} (one of {', '.join(bench.PEERS)})")
    results = []
    prog = Progress(len(impls) * len(workloads))
    for w in workloads:
        try:
            ref = bench.reference_outputs(w)
        except Exception as exc:  # noqa: BLE001
            raise CLIError(f"{w.name}: the reference failed: {type(exc).__name__}: {exc}")
        for impl in impls:
            if impl not in w.impls:
                continue  # a row this workload does not define: no row at all
            if ns.isolate and w.impls.get(impl) is not None:
                r = _isolated(w, impl, ns.quick)
            else:
                r = bench.measure(w, impl, quick=ns.quick, reference=ref)
            results.append(r)
            prog.step(f"{w.name} {impl}: {r.status}")
    print(table(results, workloads))
    if ns.json:
        doc = {"meta": meta(ns.quick), "results": [r.as_dict() for r in results],
               "ratios": {w.name: dict(zip(("adjit_over_best", "best"),
                                           bench.ratio(results, w.name))) for w in workloads}}
        with open(ns.json, "w") as fh:
            json.dump(doc, fh, indent=1)
        print(f"wrote {ns.json}")
    if ns.plot:
        plot(results, workloads, ns.plot)
        print(f"wrote {ns.plot}")
    bad = [r for r in results if r.status == "mismatch"]
    return 1 if bad else 0


def _main_one(argv):
    """`python -m adjit.cli.bench NAME IMPL [--quick]`: one measurement as a JSON line."""
    quick = "--quick" in argv
    name, impl = [a for a in argv if a != "--quick"][:2]
    w = bench.discover()[name]
    ref = bench.reference_outputs(w)
    print(json.dumps(bench.measure(w, impl, quick=quick, reference=ref).as_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(_main_one(sys.argv[1:]))
