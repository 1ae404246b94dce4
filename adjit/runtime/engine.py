"""The one process-wide LLVM engine: host target machine, optimiser, object emission, JIT linking.

Everything here runs under one lock: llvmlite objects (the target machine, the LLJIT instance)
are not safe to use from several threads at once, and compiling is rare next to calling.

Native code reaches the process as *object code*: `optimize` turns LLVM IR text into an
optimised module, `emit_object` into bytes (what the disk cache stores; normally run in the
compile worker, runtime/worker.py), and `load` maps those bytes into this process, binding the
external symbols (helpers, BLAS entry points) to addresses of *this* process at load time, so
no address is ever baked into object code. On x86-64 Linux `load` uses adjit's own ELF loader
(runtime/elfload.py), so a process that only runs code never loads libLLVM (~44 MB resident);
elsewhere, or for an object the loader does not handle, it links through LLJIT. Nothing on the
loading path imports llvmlite.binding: `host_signature` reads the CPU from /proc/cpuinfo.
"""
from __future__ import annotations

import ctypes
import hashlib
import itertools
import os
import platform
import sys
import threading

LOCK = threading.RLock()
_ENGINE = None
_lib_ids = itertools.count()
_HOST = None
LINKS = {"elf": 0, "lljit": 0, "elf_unsupported": 0}  # how code was loaded (tests, docs)


from ..codegen.errors import CompileError  # noqa: E402,F401  (raised here and by the lowering)
from ..codegen import lapack as _codegen_lapack  # noqa: E402


class _Engine:
    def __init__(self):
        import llvmlite
        import llvmlite.binding as llvm
        # llvm.initialize() raises since llvmlite 0.45: only the native target is needed.
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        self.llvm = llvm
        self.triple = llvm.get_process_triple()
        self.cpu = llvm.get_host_cpu_name()
        self.features = llvm.get_host_cpu_features().flatten()
        target = llvm.Target.from_triple(self.triple)
        self.tm = target.create_target_machine(cpu=self.cpu, features=self.features, opt=3,
                                               reloc="static", codemodel="jitdefault", jit=True)
        self.data_layout = str(self.tm.target_data)
        self.versions = (f"llvm={'.'.join(map(str, llvm.llvm_version_info))} "
                         f"llvmlite={llvmlite.__version__}")
        self.jit = llvm.create_lljit_compiler(self.tm)

    def pass_builder(self, sectioned=False, straight=False):
        # `straight`: a module without loops (straight_line) gets the -O1 pipeline: its code
        # is calls (BLAS, LAPACK) and scalar arithmetic, for which -O3's loop and
        # vectorisation passes do nothing (W3g's object code: the same bytes; -O3 4.6 ms,
        # -O1 2.9 ms)
        pto = self.llvm.create_pipeline_tuning_options(speed_level=1 if straight else 3)
        pto.slp_vectorization = not straight  # off by default; loop vectorisation is on
        # No loop unrolling (vectorised loops are still interleaved): it halved optimisation
        # and code generation time of the MLP step (W2: 280+220 ms -> 140+60 ms) and made
        # no measurable difference to run time (docs/codegen.md, Performance).
        pto.loop_unrolling = False
        if sectioned:
            # a big graph (codegen/builder.py, BIG_GRAPH): its loops are many and short, where
            # interleaving vectorised loops gains little; without it the 50-step LSTM's -O3
            # takes 15% less time and its object code is 40% smaller
            pto.loop_interleaving = False
        return self.llvm.create_pass_builder(self.tm, pto)


def engine() -> _Engine:
    """The process-wide engine, created on first use (importing adjit does not start LLVM)."""
    global _ENGINE
    if _ENGINE is None:
        with LOCK:
            if _ENGINE is None:
                _ENGINE = _Engine()
    return _ENGINE


def host_signature() -> str:
    """The host CPU and the LLVM build: part of every cache key, since object code built for
    one may be wrong (or illegal instructions) on another. On Linux read without loading LLVM
    (`_cpu_signature`); elsewhere LLVM's triple, CPU name, features and versions."""
    global _HOST
    if _HOST is None:
        sig = _cpu_signature()
        if sig is None:
            e = engine()
            sig = f"{e.triple}|{e.cpu}|{e.features}|{e.versions}"
        _HOST = sig
    return _HOST


_CPU_FIELDS = ("vendor_id", "cpu family", "model", "stepping", "flags",   # x86
               "cpu implementer", "cpu architecture", "cpu variant", "cpu part", "features")


def _cpu_signature():
    """Linux: what LLVM's host detection derives the CPU name and features from (the first
    processor's vendor, family, model, stepping and feature flags as the kernel reports them:
    the CPUID bits, minus what the OS does not enable), the machine, and the identity of
    llvmlite's LLVM library (version, size, modification time: each build bundles one LLVM),
    read without loading LLVM. None where /proc/cpuinfo is not available."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open("/proc/cpuinfo") as f:
            block = f.read().split("\n\n", 1)[0]
    except OSError:
        return None
    fields = {}
    for line in block.splitlines():
        k, _, v = line.partition(":")
        k = k.strip().lower()
        if k in _CPU_FIELDS:
            fields[k] = " ".join(sorted(v.split())) if k in ("flags", "features") else v.strip()
    if "flags" not in fields and "features" not in fields:
        return None
    import importlib.util
    import llvmlite  # the package only (its version); llvmlite.binding loads libLLVM
    spec = importlib.util.find_spec("llvmlite")
    lib = "?"
    for folder in (spec.submodule_search_locations or []):
        for name in ("libllvmlite.so", "libllvmlite.dylib"):
            path = os.path.join(folder, "binding", name)
            if os.path.exists(path):
                st = os.stat(path)
                lib = f"{st.st_size}:{st.st_mtime_ns}"
    cpu = hashlib.sha256(repr(sorted(fields.items())).encode()).hexdigest()
    return f"{platform.machine()}-linux|cpu={cpu}|llvmlite={llvmlite.__version__}|lib={lib}"


def process_triple() -> str:
    """The LLVM target triple of this process; on Linux without loading LLVM."""
    arch = platform.machine()
    if sys.platform.startswith("linux") and arch in ("x86_64", "aarch64"):
        return f"{arch}-unknown-linux-gnu"
    return engine().triple


def optimize(ir_text: str, what: str):
    """Parse LLVM IR text, verify it and run the -O3 pipeline (with SLP vectorisation); a
    module lowered in sections (a big graph: it starts with builder.SECTIONED) without loop
    interleaving (its short loops are not vectorised either: codegen/emit.py SHORT_LOOP), and `emit_object` then generates its code without loop strength reduction."""
    from ..codegen.builder import SECTIONED
    e = engine()
    sectioned = ir_text.startswith(SECTIONED)
    straight = straight_line(ir_text)
    with LOCK:
        try:
            mod = e.llvm.parse_assembly(ir_text)
            mod.triple = e.triple
            mod.data_layout = e.data_layout
            mod.verify()
            pb = e.pass_builder(sectioned, straight)
            pb.getModulePassManager().run(mod, pb)
            _drop_unused_kept(e, mod, pb)
            mod.adjit_sectioned = sectioned
            return mod
        except Exception as exc:  # llvmlite raises RuntimeError with LLVM's message
            raise CompileError(what, _first_lines(exc)) from None


def straight_line(ir_text: str) -> bool:
    """Whether LLVM IR text has no loop: every loop the lowering builds (codegen/emit.py
    Loops, the GEMM batch loop, the wide entries' copy loops, kernels' own loops) carries an
    induction variable in a phi node, so no phi means no loop (a phi without a loop only
    keeps the full pipeline)."""
    return " = phi " not in ir_text


def _drop_unused_kept(e, mod, pb):
    """The vector variants of outlined math functions are kept alive through the pipeline
    (`@llvm.compiler.used`, codegen/mathlib.py keep_alive) only so that the loop vectoriser
    can call them: once it has, the list is released and the variants nothing calls are
    deleted before code generation (chain-100: code generation 30 -> 18 ms, half the object
    code)."""
    try:
        gv = mod.get_global_variable("llvm.compiler.used")
    except NameError:
        return
    gv.name = "adjit.kept"
    gv.linkage = "private"
    mpm = e.llvm.create_new_module_pass_manager()
    mpm.add_global_dead_code_eliminate_pass()
    mpm.run(mod, pb)


def emit_object(mod, what: str) -> bytes:
    e = engine()
    # Loop strength reduction was 37% of the code generation time of the 50-step LSTM's
    # sections (1,300 short loops; 0.9 s -> 0.5 s without it). LLVM options are process-wide:
    # set for this module only, under the lock.
    no_lsr = getattr(mod, "adjit_sectioned", False)
    with LOCK:
        try:
            if no_lsr:
                e.llvm.set_option("", "-disable-lsr=true")
            return bytes(e.tm.emit_object(mod))
        except Exception as exc:
            raise CompileError(what, _first_lines(exc)) from None
        finally:
            if no_lsr:
                e.llvm.set_option("", "-disable-lsr=false")


def emit_assembly(mod) -> str:
    e = engine()
    with LOCK:
        return e.tm.emit_assembly(mod)


class Loaded:
    """A linked JIT library: keeps it alive (the tracker) and holds the entry's address. One
    per compiled entry; everything that can call into the code holds it (runtime/call.py), and
    when the last reference goes the library's code and data are freed (under the engine lock:
    the garbage collector may run in any thread)."""
    __slots__ = ("tracker", "address", "addresses")

    def __init__(self, tracker, address, addresses=None):
        self.tracker = tracker
        self.address = address
        self.addresses = addresses or {}

    def __del__(self, _finalizing=sys.is_finalizing):  # (bound now: at exit the module's
        t, self.tracker = self.tracker, None              # globals may already be None)
        if t is not None and not _finalizing():  # (at exit: llvmlite is torn down)
            with LOCK:
                t.close()  # llvmlite: dylib.clear(), the memory goes back to the process


def load(obj: bytes, symbol: str, imports: dict, what: str) -> Loaded:
    """Load object code (runtime/elfload.py, else a new JIT library); `imports` maps external
    names to addresses."""
    return load_many(obj, [symbol], imports, what)


def load_many(obj: bytes, symbols, imports: dict, what: str, keep=False):
    """Like `load`, exporting several symbols: `.addresses` maps each to its address. The ELF
    loader first (x86-64 Linux); an object it does not handle is linked by LLJIT. A malformed
    object raises CompileError (never reaches LLJIT). `keep`: never free the code."""
    from . import elfload
    if elfload.available():
        try:
            lib = elfload.load(obj, symbols, imports, what, keep=keep)
            LINKS["elf"] += 1
            return lib
        except elfload.BadObject as exc:
            raise CompileError(what, f"damaged object code: {exc}") from None
        except LookupError as exc:
            raise CompileError(what, f"linking failed: {exc}") from None
        except elfload.Unsupported:
            LINKS["elf_unsupported"] += 1   # e.g. a relocation kind it does not implement
    LINKS["lljit"] += 1
    e = engine()
    with LOCK:
        try:
            b = e.llvm.JITLibraryBuilder().add_object_img(obj).add_current_process()
            for name, addr in imports.items():
                b.import_symbol(name, addr)
            for s in symbols:
                b.export_symbol(s)
            tracker = b.link(e.jit, f"adjit_lib_{next(_lib_ids)}")
            addrs = {s: tracker[s] for s in symbols}
        except Exception as exc:
            raise CompileError(what, "linking failed: " + _first_lines(exc)) from None
    missing = [s for s, a in addrs.items() if not a]
    if missing:
        raise CompileError(what, f"symbol(s) {', '.join(missing)} not found after linking")
    return Loaded(tracker, addrs[symbols[0]], addrs)


def import_address(name: str) -> int:
    """Address bound to the external symbol adjit_<name> of compiled code: a runtime helper
    (native.py), a SciPy special function or a BLAS routine."""
    from . import native
    if name in native.HELPERS:
        return native.address(name)
    if name.startswith("Py"):  # the C API of this interpreter (the fastcall entry)
        return ctypes.cast(getattr(ctypes.pythonapi, name), ctypes.c_void_p).value
    from . import special
    if special.is_special(name):  # SciPy's scalar special functions (codegen/special.py)
        return special.address(name)
    if name.startswith("libm_"):  # the C library's math (NumPy's npy_log & co)
        from .elfload import _process_symbol  # (one CDLL: each new one is cyclic garbage)
        addr = _process_symbol(name[5:])
        if addr is None:
            raise AttributeError(f"the C library has no {name[5:]}")
        return addr
    from .blas import blas_address, lapack_address
    if name.startswith("lapack_"):
        return lapack_address(name[7:])
    return blas_address(name)


def _lapack_address(routine: str) -> int:
    from .blas import lapack_address
    return lapack_address(routine)


# the workspace queries codegen makes while lowering (codegen/lapack.py) call NumPy's LAPACK
_codegen_lapack.ADDRESS = _lapack_address


def _first_lines(exc, n=6):
    text = str(exc).strip() or type(exc).__name__
    lines = text.splitlines()
    return "\n".join(lines[:n]) + ("\n..." if len(lines) > n else "")
