"""What `adjit dump` and `adjit graph` share: load FILE.py:FUNC, make its example inputs, trace.

Every failure the user can cause (a missing file or function, a bad type string, code that
raises while it runs) becomes a `CLIError`: one line, plus the user's own traceback when the
failure happened inside their code. `adjit.cli` prints it and exits with status 2.
"""
from __future__ import annotations

import importlib.util
import os
import re
import sys
import traceback

import numpy as np

from .._frames import is_adjit_file



class CLIError(Exception):
    """A user-facing error: `msg` is one line; `detail` (optional) is printed below it."""

    def __init__(self, msg: str, detail: str = ""):
        super().__init__(msg)
        self.msg = msg
        self.detail = detail


# ------------------------------------------------------------------------------ user code

def user_traceback(exc: BaseException) -> str:
    """The traceback of `exc` restricted to frames outside adjit (the user's code), so that a
    failure inside the user's function points at the user's line, not at adjit's plumbing."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not is_adjit_file(f.filename) and not f.filename.startswith("<frozen")]
    lines = ["Traceback (most recent call last):\n"] if frames else []
    lines += traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip("\n")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def parse_target(spec: str):
    """`path/to/file.py:func` -> (path, func)."""
    path, sep, func = spec.rpartition(":")
    if not sep or not path or not func:
        raise CLIError(f"expected FILE.py:FUNCTION, got {spec!r} (e.g. examples/poly.py:poly)")
    if not re.fullmatch(r"[A-Za-z_][\w.]*", func):
        raise CLIError(f"{func!r} is not a function name (in {spec!r})")
    return path, func


def load_function(spec: str):
    """Import the user's file as a module and return (function, its name, the file's path)."""
    path, func = parse_target(spec)
    if not os.path.isfile(path):
        raise CLIError(f"no such file: {path}")
    modname = "adjit_user_" + re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    mspec = importlib.util.spec_from_file_location(modname, path)
    if mspec is None or mspec.loader is None:
        raise CLIError(f"cannot import {path} (not a Python file?)")
    mod = importlib.util.module_from_spec(mspec)
    folder = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, folder)  # the user's file may import its neighbours
    sys.modules[modname] = mod
    try:
        mspec.loader.exec_module(mod)
    except (Exception, SystemExit) as exc:
        raise CLIError(f"{path} failed while loading: {_one_line(exc)}",
                       user_traceback(exc)) from None
    obj = mod
    for part in func.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            names = sorted(k for k, v in vars(mod).items()
                           if callable(v) and getattr(v, "__module__", None) == modname)
            raise CLIError(f"{path} has no function {func!r}"
                           + (f" (it defines: {', '.join(names)})" if names else ""))
    if not callable(obj):
        raise CLIError(f"{path}:{func} is a {type(obj).__name__}, not a function")
    return obj, func.split(".")[-1], path


# ------------------------------------------------------------------------------ inputs

_TYPE = re.compile(r"([A-Za-z0-9_]+)\[([^\]]*)\]")


def parse_arg_types(text: str):
    """`"f32[32,20] f64[] i64[3]"` -> [AType, ...]. Separators: spaces or commas."""
    from ..ir.types import parse_type
    types, pos = [], 0
    text = text or ""
    for m in _TYPE.finditer(text):
        gap = text[pos:m.start()]
        if gap.strip(" ,\t"):
            raise CLIError(f"bad type string {gap.strip(' ,')!r} in --args "
                           f"(expected types like f32[32,20] f64[] i64[5])")
        try:
            types.append(parse_type(m.group(0).replace(" ", "")))
        except ValueError as exc:
            raise CLIError(f"bad type string {m.group(0)!r} in --args: {exc}") from None
        pos = m.end()
    rest = text[pos:]
    if rest.strip(" ,\t"):
        raise CLIError(f"bad type string {rest.strip(' ,')!r} in --args "
                       f"(expected types like f32[32,20] f64[] i64[5])")
    return types


def _memory_bytes():
    """Physical memory of this machine (None when the platform does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return None


def _gb(n):
    return f"{n / 2 ** 30:.1f} GiB"


def make_inputs(types, seed=0):
    """Seeded example inputs: floats ~ N(0, 1), ints in [0, 10), bools fair coins. Inputs
    larger than half this machine's memory are refused (a user's mistake, not a crash)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise CLIError(f"--seed must be a non-negative integer, got {seed!r}")
    need = sum(int(np.prod(t.shape, dtype=object)) * np.dtype(t.np_dtype).itemsize
               for t in types)
    mem = _memory_bytes()
    if mem is not None and need > mem // 2:
        big = " ".join(str(t) for t in types
                       if int(np.prod(t.shape, dtype=object)) * np.dtype(t.np_dtype).itemsize
                       > mem // 2 // max(len(types), 1)) or " ".join(str(t) for t in types)
        raise CLIError(f"--args asks for {_gb(need)} of inputs ({big}); this machine has "
                       f"{_gb(mem)} of memory (use smaller shapes, or --npz with your arrays)")
    try:
        return _random_inputs(types, seed)
    except MemoryError:
        raise CLIError(f"--args asks for {_gb(need)} of inputs, more than can be allocated "
                       "(use smaller shapes)") from None


def _random_inputs(types, seed):
    rng = np.random.default_rng(seed)
    out = []
    for t in types:
        if t.dtype in ("f32", "f64"):
            a = rng.standard_normal(t.shape).astype(t.np_dtype)
        elif t.dtype == "bool":
            a = rng.random(t.shape) < 0.5
        else:
            a = rng.integers(0, 10, size=t.shape).astype(t.np_dtype)
        out.append(np.asarray(a))
    return out


def read_text(path: str) -> str:
    """The UTF-8 text `path` names: a file, or a pipe (`adjit check <(...)`), read once; "-"
    is standard input. Every way it can fail is the user's: a CLIError of one line."""
    try:
        if path == "-":
            stdin = sys.stdin
            data = stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read()
            if isinstance(data, str):
                return data
            path = "<stdin>"
        else:
            with open(path, "rb") as fh:
                data = fh.read()
    except FileNotFoundError:
        raise CLIError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise CLIError(f"{path} is a directory, not a file") from None
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror or _one_line(exc)}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CLIError(f"{path} is not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line} "
                       f"(offset {exc.start})") from None


def load_npz(path, types=None):
    """The arrays of an .npz file in its stored order (np.savez's arr_0, arr_1, ...)."""
    from ..ir.types import AType
    if not os.path.isfile(path):
        raise CLIError(f"no such file: {path}")
    try:
        with np.load(path) as z:
            arrays = [np.asarray(z[k]) for k in z.files]
    except Exception as exc:
        raise CLIError(f"cannot read {path} as .npz: {_one_line(exc)}") from None
    try:
        got = [AType(a.shape, a.dtype) for a in arrays]
    except TypeError as exc:
        raise CLIError(f"{path}: {exc}") from None
    if types and [str(t) for t in types] != [str(t) for t in got]:
        raise CLIError(f"{path} holds {' '.join(map(str, got))}, but --args says "
                       f"{' '.join(map(str, types))}")
    return arrays


def check_arity(f, name, n):
    """A clear error when the function cannot take `n` positional arguments."""
    import inspect
    try:
        sig = inspect.signature(f)
    except (TypeError, ValueError):  # builtins and the like: let the call decide
        return
    try:
        sig.bind(*range(n))
    except TypeError as exc:
        raise CLIError(f"{name}{sig} cannot take the {n} argument(s) of --args: {exc}") from None


# ------------------------------------------------------------------------------ tracing

def trace(f, args, name):
    """The forward IR of `f` at `args` (adjit.make_ir: the NumPy front)."""
    from ..transforms import make_ir
    try:
        g = make_ir(f)(*args)
    except Exception as exc:
        raise CLIError(f"{name} failed while tracing: {_one_line(exc)}",
                       user_traceback(exc)) from None
    return g
