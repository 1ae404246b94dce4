"""Compiling off the caller's path: a client for the compile worker (adjit/runtime/worker.py).

llvmlite serialises its C calls behind one lock, lowering is Python holding the GIL, and the
machine may have two cores: a compile thread in the user's process would stall the user's
calls. So compiles run in a persistent, low-priority worker process, started on the first
request and fed IR text (a graph's structure key, which is its printed form); it answers with
object code, which the user's process only links.

`submit(skey, graph)` returns a `Job` (one per structure key: several graphs or threads asking
for the same structure share one compile). Linking happens off the caller's path too (LLVM's
C calls release the GIL): a disk-cache entry is linked by a short-lived thread, the worker's
answer by the thread that reads it. A job ends "ready" (`cg`: the linked CompiledGraph, also
in the memory cache), "error" (the graph cannot be compiled: `message`), "mismatch" (the text
did not round-trip: the caller compiles in its own process) or "lost" (the worker died, or
this is a child after `fork`): a lost job is submitted again by whoever polls it next. The
worker is restarted on demand.

Synchronous requests (`compile_graph_object`: ADJIT_TIER=native and `compile_now`;
`compile_llvm`: the runtime's own helpers, native.py) go to the same worker and wait for its
answer, so this process never runs LLVM's optimiser and never loads libLLVM (the object code is
loaded by runtime/elfload.py). They return None when the worker cannot run or the text did not
round-trip; the caller then compiles in its own process.
"""
from __future__ import annotations

import itertools
import os
import sys
import threading
import time
import _thread

from .worker import read_message, write_message

_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Job:
    __slots__ = ("skey", "graph", "state", "cg", "message", "done", "owner", "optimize",
                 "fresh")

    def __init__(self, skey, graph, owner=None, optimize=False):
        self.owner = owner
        self.skey = skey
        self.graph = graph
        # the worker runs adjit's passes on the graph first (it was sent as traced): the
        # disk entry is keyed by the optimised structure, the code serves the traced one
        self.optimize = optimize
        self.fresh = False  # the worker compiles, not reading its disk cache (see link)
        self.state = "pending"
        self.cg = self.message = None
        self.done = threading.Event()

    def finish(self, state, cg=None, message=None):
        self.cg, self.message = cg, message
        self.graph = None
        self.state = state
        self.done.set()
        owner, self.owner = self.owner, None
        if state == "ready" and owner is not None:
            # the code now lives in the memory cache (and with whoever holds this job): the
            # compiler forgets the job, so cache_clear() and eviction can free the code, and a
            # later request for the structure starts from the caches again
            with owner._lock:
                if owner._jobs.get(self.skey) is self:
                    del owner._jobs[self.skey]

    @property
    def payload(self):
        """What the worker is sent: the structure key (IR text), or ("optimize", text)."""
        if not self.optimize:
            return self.skey
        return ("optimize", self.skey, "fresh") if self.fresh else ("optimize", self.skey)

    def link(self, obj, meta, skey=None, stat="background_compiles", okey=None, disk=False):
        """Link object code for this job's structure (off the caller's thread); `okey`: the
        structure key of the optimised graph the code was compiled from (an alias in the
        memory cache); `disk`: the worker read it from the disk cache."""
        if skey is not None and skey != self.skey:  # the text did not round-trip: not ours
            self.finish("mismatch", message="the IR text did not round-trip")
            return
        from . import cache
        try:
            cg = cache.install(self.graph, self.skey, obj, meta,
                               "disk_hits" if disk else stat)
        except Exception as exc:
            owner = self.owner
            if disk and okey is not None and owner is not None and not self.fresh:
                # an entry that does not load (damaged object code): discarded, compiled
                # again by the worker (the job stays pending: a waiting caller gets the code)
                cache._reject(cache._path(cache.disk_key(okey)), exc)
                self.fresh = True
                owner._send(self)
                return
            self.finish("error", message=f"linking failed: {exc}")
            return
        if okey is not None and okey != self.skey:
            cache._remember(okey, cg)
        self.finish("ready", cg)


class _Request:
    """A synchronous request: the worker's answer (object code and meta) is kept, not linked."""
    __slots__ = ("skey", "payload", "state", "obj", "meta", "message", "done")

    def __init__(self, skey, payload=None):
        self.skey = skey
        self.payload = skey if payload is None else payload
        self.state = "pending"
        self.obj = self.meta = self.message = None
        self.done = threading.Event()

    def finish(self, state, cg=None, message=None):
        self.message = message
        self.state = state
        self.done.set()

    def link(self, obj, meta, skey=None, stat=None, okey=None):
        if skey is not None and skey != self.skey:
            self.finish("mismatch", message="the IR text did not round-trip")
            return
        self.obj, self.meta = obj, meta
        self.finish("ready")


def _worker_usable():
    # not inside the worker itself (it compiles in its own process), and a Python to run it
    return not os.environ.get("ADJIT_IN_WORKER") and bool(sys.executable)


UNKNOWN_EXIT = -256  # a worker's exit status nobody could read (no signal number is 256)


def exit_note(code):
    """' (exit status N)' / ' (killed by signal NAME)' for a worker's exit code, as Popen's."""
    if code is None or code == UNKNOWN_EXIT:
        return ""
    if code < 0:
        import signal
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return f" (killed by signal {name})"
    return f" (exit status {code})"


def _libc_spawn():
    """libc's posix_spawn, posix_spawnp and file-action functions through ctypes, or None.

    os.posix_spawn holds the GIL while libc spawns, and libc's posix_spawn returns only once
    the child has executed the new program (a vfork-style clone: 0.4-20 ms measured): the
    thread that starts the worker stalled the user's calls for that long (W2's calls after
    the 20th: one of 3.5-4.4 ms). A ctypes call releases the GIL."""
    try:
        import ctypes
        libc = ctypes.CDLL(None)
        fns = [getattr(libc, n) for n in (
            "posix_spawn", "posix_spawnp", "posix_spawn_file_actions_init",
            "posix_spawn_file_actions_adddup2", "posix_spawn_file_actions_addopen",
            "posix_spawn_file_actions_destroy")]
    except (ImportError, OSError, AttributeError):  # no libc symbols to reach: os.posix_spawn
        return None
    vp, ci = ctypes.c_void_p, ctypes.c_int
    for f in fns[:2]:
        f.argtypes = [vp, ctypes.c_char_p, vp, vp, vp, vp]
    fns[2].argtypes = fns[5].argtypes = [vp]
    fns[3].argtypes = [vp, ci, ci]
    fns[4].argtypes = [vp, ci, ctypes.c_char_p, ci, ctypes.c_uint]
    for f in fns:
        f.restype = ci
    return ctypes, fns


def _spawn_without_gil(argv, env, r_in, w_out):
    """The worker's pid: argv run with env, r_in as its standard input, w_out its output,
    /dev/null its error (os.posix_spawn's file actions), spawned through ctypes."""
    ctypes, (spawn, spawnp, init, dup2, addopen, destroy) = _LIBC_SPAWN
    # (posix_spawn_file_actions_t: 80 bytes on glibc, a pointer elsewhere; 256 fit all)
    fa = ctypes.create_string_buffer(256)
    err = init(fa)
    if err:
        raise OSError(err, os.strerror(err))
    try:
        devnull = os.fsencode(os.devnull)
        for err in (dup2(fa, r_in, 0), dup2(fa, w_out, 1),
                    addopen(fa, 2, devnull, os.O_WRONLY, 0)):
            if err:
                raise OSError(err, os.strerror(err))
        args = [os.fsencode(a) for a in argv]
        envs = [os.fsencode(k) + b"=" + os.fsencode(v) for k, v in env.items()]
        av = (ctypes.c_char_p * (len(args) + 1))(*args, None)
        ev = (ctypes.c_char_p * (len(envs) + 1))(*envs, None)
        pid = ctypes.c_int(0)
        fn = spawn if os.path.dirname(argv[0]) else spawnp
        err = fn(ctypes.byref(pid), args[0], fa, None, av, ev)
        if err:
            raise OSError(err, os.strerror(err), argv[0])
        return pid.value
    finally:
        destroy(fa)


_LIBC_SPAWN = _libc_spawn() if hasattr(os, "posix_spawn") else None


class _Proc:
    """The worker process, started by os.posix_spawn with two pipes: what the compiler needs
    of a subprocess.Popen (stdin, stdout, pid, poll, kill, wait) without importing `subprocess`
    (~3 ms, paid by the call that first asked for a compile; this module is imported with the
    runtime so that no call pays for it, see runtime/__init__.py). The pipes' own descriptors
    are not inherited (Python opens them close-on-exec); the worker gets them as its standard
    input and output, /dev/null as its standard error."""

    def __init__(self, argv, env):
        r_in, w_in = os.pipe()
        r_out, w_out = os.pipe()
        try:
            if _LIBC_SPAWN is not None:
                self.pid = _spawn_without_gil(argv, env, r_in, w_out)
            else:
                acts = [(os.POSIX_SPAWN_DUP2, r_in, 0), (os.POSIX_SPAWN_DUP2, w_out, 1),
                        (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)]
                spawn = os.posix_spawn if os.path.dirname(argv[0]) else os.posix_spawnp
                self.pid = spawn(argv[0], argv, env, file_actions=acts)
        except BaseException:
            for fd in (w_in, r_out):
                os.close(fd)
            raise
        finally:
            os.close(r_in)
            os.close(w_out)
        self.returncode = None
        self._reaping = threading.Lock()
        self.stdin = os.fdopen(w_in, "wb")
        self.stdout = os.fdopen(r_out, "rb")

    def _reaped(self, flags):
        # One waitpid at a time, and only under `_reaping`: the reader thread (which sees the
        # worker's output end) and kill() both wait for the worker, and the second waitpid of
        # a pid fails (ECHILD); kill() signals under the same lock, so it never signals a pid
        # reaped meanwhile (which the system may have given to another process). A blocking
        # wait first waits for the exit without reaping (waitid WNOWAIT, outside the lock),
        # then reaps under the lock.
        if self.returncode is not None:
            return
        if not flags & os.WNOHANG:
            self._exited()
        with self._reaping:
            if self.returncode is None:
                try:
                    pid, status = os.waitpid(self.pid, os.WNOHANG)
                except ChildProcessError:
                    # reaped outside this object (SIGCHLD ignored, or a handler that waits for
                    # any child): the status is lost
                    self.returncode = UNKNOWN_EXIT
                    return
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)

    def _exited(self):
        """Return once the worker has exited (it stays unreaped: its pid is still ours)."""
        if hasattr(os, "waitid"):
            try:
                os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)
            except ChildProcessError:
                pass
            return
        import time  # pragma: no cover - no waitid
        while self.returncode is None:
            with self._reaping:
                try:
                    pid, status = os.waitpid(self.pid, os.WNOHANG)
                except ChildProcessError:
                    return
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
                    return
            time.sleep(0.01)

    def poll(self):
        """The exit code (-N: killed by signal N; UNKNOWN_EXIT when something outside reaped
        it), or None while the worker runs (an exited worker is reaped)."""
        self._reaped(os.WNOHANG)
        return self.returncode

    def wait(self):
        self._reaped(0)
        return self.returncode

    def kill(self):
        with self._reaping:
            if self.returncode is None:
                # not reaped yet (at worst a zombie): the pid is still this worker's
                try:
                    os.kill(self.pid, 9)  # SIGKILL
                except ProcessLookupError:
                    pass


class Compiler:
    def __init__(self, nice=10):
        self.nice = nice     # the worker's niceness (10: background; 0: a caller waits)
        self._lock = threading.Lock()    # bookkeeping: never held while writing to the worker
        self._wlock = threading.Lock()   # one message at a time on the worker's input
        self._proc = None
        self._ids = itertools.count()
        self._waiting = {}   # request id -> Job
        self._jobs = {}      # structure key -> Job (pending or finished)
        self.started = 0     # workers started (tests: a killed worker is restarted)
        self.start_attempts = 0  # starts tried, failed ones included (tests: the back-off)
        # A worker that cannot start (spawn fails, or it exits with a status before answering
        # anything: no Python, adjit not importable there) is not started again before
        # `_down_until` (time.monotonic()); meanwhile jobs end "lost" at once without a new
        # thread or process (graphs stay interpreted; a caller that waits compiles in its own
        # process, as when the worker cannot run). The delay doubles per failed start, from
        # START_BACKOFF to START_BACKOFF_MAX seconds, and resets once a worker answers.
        self._down_until = 0.0
        self._backoff = 0.0
        self._down_reason = "the compile worker could not be started"

    def submit(self, skey, graph, optimize=False) -> Job:
        """The job compiling structure `skey` (`graph`: a graph of that structure); with
        `optimize`, the worker optimises the graph before compiling it."""
        with self._lock:
            job = self._jobs.get(skey)
            if job is not None and (job.state != "lost" or self._down()):
                return job  # (lost while the worker cannot start: tried again after the delay)
            job = self._jobs[skey] = Job(skey, graph, self, optimize)
        # not threading.Thread.start: it waits until the new thread has run (an OS wake-up,
        # then the new thread's first stretch of Python under the GIL), 0.2-26 ms measured
        # on the call that submits, which may be a structure's second call (a disk-cache hit)
        _start_thread(self._start_job, job)
        return job

    def request(self, skey, payload=None):
        """Send a synchronous request and wait for its answer (a lost one is sent once more):
        the finished _Request."""
        for _ in range(2):
            req = _Request(skey, payload)
            self._send(req)
            req.done.wait()
            if req.state != "lost":
                break
        return req

    def _down(self):
        """True while a failed worker start holds off the next one."""
        return self._down_until and time.monotonic() < self._down_until

    def _start_failed(self, reason):
        with self._lock:
            self._down_reason = reason
            self._backoff = min(START_BACKOFF_MAX, max(START_BACKOFF, 2 * self._backoff))
            self._down_until = time.monotonic() + self._backoff

    def job(self, skey):
        """The job for structure `skey` (pending or finished), or None."""
        with self._lock:
            return self._jobs.get(skey)

    def _start_job(self, job):
        from . import cache
        if not cache.disk_cacheable(job.graph):
            # a throwaway primitive (ir.core.registered) exists in this process only: the
            # worker could not parse it, so the caller compiles it itself
            job.finish("mismatch", message="a primitive the worker does not know")
            return
        if not cache.text_carries(job.graph):
            job.finish("mismatch", message="constants the IR text does not carry")
            return
        if job.optimize:
            # the entry is keyed by the optimised structure, which the worker computes: it
            # looks the entry up itself (this process then needs no cache key, so no
            # digest of the code generator's files and no CPU probe)
            self._send(job)
            return
        key = cache.disk_key(job.skey)
        hit = cache.read_entry(key)
        if hit is not None:  # compiled by an earlier process (or worker): only link it
            try:
                cg = cache.install(job.graph, job.skey, *hit, stat="disk_hits")
            except Exception as exc:
                # an entry that does not load (damaged object code): discarded, compiled
                # again (the job stays pending: a waiting caller gets the new code)
                cache._reject(cache._path(key), exc)
            else:
                job.finish("ready", cg)
                return
        self._send(job)

    def _send(self, job):
        """Send `job` (or a request) to the worker. `_lock` guards only the bookkeeping: the
        write, which blocks while the worker's pipe is full, holds `_wlock` alone. Holding
        `_lock` there deadlocked: the worker, blocked writing an answer, stops reading its
        input, and the reader thread that would drain that answer waits for `_lock`."""
        from .cache import trusted_cache_dir
        folder = trusted_cache_dir()
        failed = False
        for _ in range(2):
            with self._lock:
                proc = self._proc
                if proc is None or proc.poll() is not None:
                    if self._down():
                        break
                    try:
                        proc = self._start()
                    except OSError as exc:  # no such executable, no process left, ...
                        failed = f"the compile worker could not be started: {exc}"
                        break
                rid = next(self._ids)
                self._waiting[rid] = job
            try:
                # the cache folder of this request: ADJIT_CACHE_DIR may change after the
                # worker started (tests do), and the worker writes the entry there; None
                # when this process does not trust it (then nothing is written)
                with self._wlock:
                    write_message(proc.stdin, (rid, job.payload, folder))
                return
            except (BrokenPipeError, OSError, ValueError):
                with self._lock:
                    self._waiting.pop(rid, None)
                    if self._proc is proc:
                        self._proc = None
        if failed:
            self._start_failed(failed)
        # (while a failed start holds the next one off: why that start failed)
        job.finish("lost", message=self._down_reason if self._down() or failed else
                   "the compile worker could not be started")

    def _start(self):
        env = dict(os.environ)
        env["PYTHONPATH"] = _PACKAGE_PARENT + (os.pathsep + env["PYTHONPATH"]
                                               if env.get("PYTHONPATH") else "")
        env["ADJIT_IN_WORKER"] = "1"
        env["ADJIT_WORKER_NICE"] = str(self.nice)
        argv = list(WORKER_COMMAND or [sys.executable, "-c", _WORKER_BOOT])
        self.start_attempts += 1
        if hasattr(os, "posix_spawn"):
            # lowered from here at once: the worker's own os.nice runs only after Python's
            # start-up (~30 ms), which the kernel had put on the caller's core at the caller's
            # priority (W2's calls 21-170 each lost 4 ms every 8 ms: a shared time slice)
            lowered = self.nice > 0 and hasattr(os, "setpriority")
            if lowered:
                env["ADJIT_WORKER_NICE"] = "0"
            proc = _Proc(argv, env)
            if lowered:
                try:
                    os.setpriority(os.PRIO_PROCESS, proc.pid,
                                   min(19, os.getpriority(os.PRIO_PROCESS, 0) + self.nice))
                except OSError:  # (raising a child's niceness needs no privilege)
                    pass
        else:  # pragma: no cover - not POSIX
            import subprocess
            proc = subprocess.Popen(argv,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, env=env, close_fds=True)
        self._proc = proc
        self.started += 1
        threading.Thread(target=self._read, args=(proc,), name="adjit-compile-reader",
                         daemon=True).start()
        return proc

    def _read(self, proc):
        answered = False
        while True:
            try:
                msg = read_message(proc.stdout)
            except Exception:
                msg = None
            if msg is None:
                break
            if not answered:
                answered = True
                with self._lock:
                    self._backoff = self._down_until = 0.0
            rid, status, *rest = msg
            with self._lock:
                job = self._waiting.pop(rid, None)
            if job is None:
                continue
            if status == "ok":
                # optimised graphs: the optimised structure's key, whether read from disk
                skey, obj, meta, *more = rest
                okey, disk = more if more else (None, False)
                if isinstance(job, Job):
                    # linked in a thread of its own: linking may need the runtime helpers,
                    # whose first compile is answered through this very thread
                    threading.Thread(target=job.link, args=(obj, meta, skey),
                                     kwargs={"okey": okey, "disk": disk},
                                     name="adjit-link", daemon=True).start()
                else:
                    job.link(obj, meta, skey)
            else:
                job.finish("error", message=rest[0])
        # the worker is gone (killed, crashed, or closed at exit): what it had is lost
        try:
            code = proc.wait()  # reaped (an exited worker is no zombie)
        except OSError:
            code = None
        if not answered and code is not None and code >= 0:
            # exited by itself before any answer: it cannot start (a worker killed by a
            # signal, or one that answered, is simply started again on demand)
            self._start_failed("the compile worker exited" + exit_note(code))
        with self._lock:
            if self._proc is proc:
                self._proc = None
            lost = [j for r, j in list(self._waiting.items())]
            self._waiting.clear()
        for job in lost:
            job.finish("lost", message="the compile worker exited" + exit_note(code))

    def kill(self):
        """Stop the worker (tests; interpreter exit closes its input and it exits itself)."""
        with self._lock:
            proc = self._proc
        if proc is not None:
            proc.kill()
            proc.wait()

    def wait_idle(self, timeout=None):
        """Wait until no job is pending (each at most `timeout` seconds)."""
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.state == "pending"]
        for job in jobs:
            job.done.wait(timeout)

    def forget(self):
        with self._lock:
            for job in self._jobs.values():
                if job.state == "pending":
                    job.finish("lost", message="forgotten")
            self._jobs.clear()


_COMPILER = None
_COMPILER_LOCK = threading.Lock()
WORKER_COMMAND = None   # argv of the worker (None: python -c _WORKER_BOOT); tests
START_BACKOFF = 2.0       # seconds without a start attempt after a failed one (doubling)
START_BACKOFF_MAX = 120.0
# The worker lowers its priority before it imports adjit: `python -m adjit.runtime.worker`
# ran `import adjit` (0.3-0.8 s of CPU) at the caller's priority, competing with the calls
# the user's process makes meanwhile (worker.main lowers it too, for a worker started by hand).
_WORKER_BOOT = """import os
try:
    os.nice(int(os.environ.get("ADJIT_WORKER_NICE", "10")))
except (OSError, ValueError):
    pass
os.environ["ADJIT_WORKER_NICE"] = "0"  # lowered once
from adjit.runtime.worker import main
main()
"""


def compile_graph_object(skey, what):
    """(object code, meta) of structure `skey` (a graph's printed text), compiled by the worker
    (which also writes the disk-cache entry); the caller waits. None when the worker cannot run
    or could not take the text (the caller then compiles in its own process). Raises
    CompileError when the graph cannot be compiled."""
    if not _worker_usable():
        return None
    req = sync_compiler().request(skey)
    if req.state == "ready":
        return req.obj, req.meta
    if req.state == "error":
        from ..codegen.errors import CompileError
        raise CompileError(what, req.message)
    return None


def compile_llvm(key, text, meta, what):
    """Object code of LLVM IR `text` (optimised like a graph), compiled by the worker, which
    stores it in the disk cache under `key` with header `meta`. None when the worker cannot
    run; raises CompileError when the text does not compile."""
    if not _worker_usable():
        return None
    req = _for_this_thread().request(key, ("llvm", key, text, meta))
    if req.state == "ready":
        return req.obj
    if req.state == "error":
        from ..codegen.errors import CompileError
        raise CompileError(what, req.message)
    return None


def compiler() -> Compiler:
    """The background compiler: a low-priority worker (tier promotions, off every caller's
    path)."""
    global _COMPILER
    c = _COMPILER
    if c is None:
        with _COMPILER_LOCK:
            if _COMPILER is None:
                _COMPILER = Compiler()
            c = _COMPILER
    return c


_SYNC_COMPILER = None


def sync_compiler() -> Compiler:
    """The compiler of requests a caller waits for (ADJIT_TIER=native, compile_now, the
    runtime helpers asked for from a caller's thread): a worker at the caller's priority, since
    a low-priority one would make the caller wait behind every other process of a busy
    machine."""
    global _SYNC_COMPILER
    c = _SYNC_COMPILER
    if c is None:
        with _COMPILER_LOCK:
            if _SYNC_COMPILER is None:
                _SYNC_COMPILER = Compiler(nice=0)
            c = _SYNC_COMPILER
    return c


_BACKGROUND = threading.local()  # .on: a thread `_start_thread` started


def _start_thread(fn, *args):
    """Run fn(*args) in a new daemon thread of adjit's own, without waiting for it to start."""
    def run():
        _BACKGROUND.on = True
        fn(*args)
    _thread.start_new_thread(run, ())


def _for_this_thread() -> Compiler:
    # adjit's own background threads (linking a promoted graph) wait at low priority
    if getattr(_BACKGROUND, "on", False) or threading.current_thread().name.startswith("adjit-"):
        return compiler()
    return sync_compiler()


def _after_fork_in_child():
    # the worker and the reader thread belong to the parent: a child drops in-flight compiles
    # (their jobs become "lost", so the child's next poll submits them to its own worker)
    global _COMPILER, _COMPILER_LOCK, _SYNC_COMPILER
    old = _COMPILER
    _COMPILER = _SYNC_COMPILER = None
    _COMPILER_LOCK = threading.Lock()
    if old is not None:
        for job in list(old._jobs.values()):
            if job.state == "pending":
                job.state = "lost"
                job.done.set()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
