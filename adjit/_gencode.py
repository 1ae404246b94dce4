"""Python source that adjit generates per structure (jit's flatteners and assemblers,
transforms/jitargs.py; native code's entries, runtime/call.py): compiled once per distinct
source in a process. Such source depends only on the structure's form (its constants are names
in the `env` it runs in), so the compile, most of the cost of a new generated function, is paid
once by the first structure of a form: a new jitted function with the form of an earlier one
(a step defined again) reuses the code object."""
from __future__ import annotations

_CODE: dict = {}  # (filename, source) -> code object
MAX_CODE = 1024


def define(src, env, name, filename):
    """The function `name` that source `src` defines, run with globals `env`; `filename` names
    it in tracebacks (`<adjit ...>`: adjit's own code, see _frames.is_adjit_file)."""
    key = (filename, src)
    code = _CODE.get(key)
    if code is None:
        if len(_CODE) >= MAX_CODE:
            _CODE.clear()
        code = _CODE[key] = compile(src, filename, "exec")
    exec(code, env)  # noqa: S102 - source adjit generated from a structure's form
    return env[name]
