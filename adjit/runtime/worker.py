"""The compile worker: a separate, low-priority process that turns IR text into object code.

`python -m adjit.runtime.worker` reads requests from standard input and answers on standard
output, one length-prefixed pickle each way:

    request  (request id, IR text, cache folder)   the graph's structure key (print_graph)
             (request id, ("optimize", IR text[, "fresh"]), cache folder)   a graph as traced:
                                 optimised here first (adjit.ir.passes.optimize); "fresh":
                                 compiled even if the disk cache has it (its entry did not load)
             (request id, ("llvm", key, LLVM IR, meta), cache folder)   the runtime's helpers
    answer   (request id, "ok", structure key, object code, meta)
             (request id, "ok", structure key, object code, meta, optimised structure key,
              read from the disk cache)
             (request id, "error", message)       (a CompileError's reason)

It parses the text (adjit.ir.parse_graph), optimises it when asked (the passes never read a
constant's value, so the parsed graph optimises as the caller's would; the entry is keyed by the
optimised structure and the sent text gets a hot mark, cache.was_hot), lowers, optimises and emits it, writes the disk-cache
entry (so a later process loads it), and returns the object code: the user's process only
links it. The structure key it returns is the parsed graph's own, so the caller can check the
text round-tripped before using the code. The worker exits when its standard input closes.

It also exits after `MAX_COMPILES` compiles, or once its resident memory passes `MAX_RSS_MB`:
LLVM's new pass manager, as llvmlite 0.50 drives it, keeps about 80 KB per optimised module
(a `PassInstrumentationCallbacks` allocated per pass builder and never freed), so a long-lived
compiler process grows without bound. The client (background.py) starts a fresh worker on the
next request; a request that was queued behind the exit is answered by the new worker.
"""
from __future__ import annotations

import os
import pickle
import struct
import sys

_LEN = struct.Struct("<Q")


def read_message(stream):
    head = stream.read(_LEN.size)
    if len(head) < _LEN.size:
        return None
    (n,) = _LEN.unpack(head)
    body = stream.read(n)
    if len(body) < n:
        return None
    return pickle.loads(body)


def write_message(stream, obj):
    body = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LEN.pack(len(body)) + body)
    stream.flush()


MAX_COMPILES = int(os.environ.get("ADJIT_WORKER_MAX_COMPILES", "500"))
MAX_RSS_MB = float(os.environ.get("ADJIT_WORKER_MAX_RSS_MB", "400"))


def _rss_mb():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        return 0.0


def serve(inp, out):
    from ..ir.parser import parse_graph
    from . import cache, engine
    from .compile import compile_object
    done = 0
    while done < MAX_COMPILES and _rss_mb() < MAX_RSS_MB:
        done += 1
        msg = read_message(inp)
        if msg is None:
            return
        rid, text, *folder = msg
        write = True
        if folder:  # the client's cache folder for this request (None: one it does not trust)
            write = folder[0] is not None
            if write:
                os.environ["ADJIT_CACHE_DIR"] = folder[0]
        try:
            if isinstance(text, tuple) and text[0] == "llvm":  # the runtime's helpers (IR)
                _, key, ir_text, meta = text
                what = f"runtime helpers {meta.get('symbol')}"
                obj = engine.emit_object(engine.optimize(ir_text, what), what)
                if write:
                    cache.write_entry(key, obj, meta)
                write_message(out, (rid, "ok", key, obj, meta))
                continue
            if isinstance(text, tuple) and text[0] == "optimize":  # a graph as traced
                write_message(out, _optimized(rid, text[1], write, "fresh" in text[2:]))
                continue
            g = parse_graph(text)
            skey = g.structure_key()
            obj, meta = compile_object(g)
            if skey == text and write:
                cache.write_entry(cache.disk_key(skey), obj, meta, skey)
            write_message(out, (rid, "ok", skey, obj, meta))
        except engine.CompileError as exc:  # the reason: the caller raises its own error
            write_message(out, (rid, "error", exc.reason))
        except Exception as exc:  # answered, never fatal: the caller falls back
            write_message(out, (rid, "error", f"{type(exc).__name__}: {exc}"))


def _optimized(rid, text, write, fresh=False):
    """The answer for a graph sent as traced: optimised here, its code from the disk cache
    (another traced graph may optimise to the same structure) or compiled now."""
    from ..ir.parser import parse_graph
    from ..ir.passes import optimize
    from . import cache
    from .compile import compile_object
    g = parse_graph(text)
    skey = g.structure_key()
    opt = optimize(g)
    okey = opt.structure_key()
    key = cache.disk_key(okey)
    hit = cache.read_entry(key) if write and not fresh else None
    if hit is not None:
        obj, meta = hit
    else:
        obj, meta = compile_object(opt)
        if write:
            cache.write_entry(key, obj, meta)
    if write and skey == text:  # the mark a later process's first run checks: the traced text
        cache.mark_hot(skey)
    return (rid, "ok", skey, obj, meta, okey, hit is not None)


def main():
    try:
        # the user's process comes first on a shared machine (0 for the compiles a caller
        # waits for: runtime/background.py sync_compiler)
        os.nice(int(os.environ.get("ADJIT_WORKER_NICE", "10")))
    except OSError:
        pass
    serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
