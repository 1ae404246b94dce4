"""The `adjit` command: dump | check | graph | bench | demo | notebook | cache (`adjit --help`).

Exit status: 0 success; 1 `check` found problems (or a picture could only be written as .dot);
2 a usage error (unknown file, function, stage or type string; the user's function failed while
tracing), reported as one line, plus the user's traceback when their code raised; 3 an internal
error of adjit (one line; ADJIT_DEBUG=1 shows the traceback).
"""
from __future__ import annotations

import argparse
import os
import sys

from .load import CLIError

EXAMPLES = {
    "dump": """examples:
  adjit dump examples/poly.py:poly --args "f64[]"
  adjit dump examples/mlp.py:loss --args "f32[32,20] f32[20,16] f32[16]" --grad 1,2 --stage all
  adjit dump examples/mlp.py:loss --npz inputs.npz --stage optimized | adjit check -""",
    "check": """examples:
  adjit check kernel.ir
  adjit dump examples/poly.py:poly --args "f64[]" --grad --stage optimized | adjit check -""",
    "graph": """examples:
  adjit graph examples/mlp.py:loss --args "f32[32,20] f32[20,16] f32[16]" -o mlp.svg
  adjit graph examples/poly.py:poly --args "f64[]" --grad -o poly_grad.png""",
    "bench": """examples:
  adjit bench --quick                       # every workload, few iterations
  adjit bench W1 --json out.json --plot out.png
  adjit bench W1 --quick --only adjit,numpy,jax""",
    "demo": """example:
  adjit demo""",
    "notebook": """example:
  adjit notebook examples/seeds/seed_003.py""",
    "cache": """examples:
  adjit cache info
  adjit cache clear""",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # one line, not argparse's usage block: the help is one flag away
        sys.stderr.write(f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(2)


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def _add_trace_args(p):
    p.add_argument("target", metavar="FILE.py:FUNC", help="the function to trace")
    p.add_argument("--args", default=None, metavar="TYPES",
                   help='argument types, e.g. "f32[32,20] f32[20,16] f64[]" (random inputs)')
    p.add_argument("--npz", metavar="FILE", help="take the inputs from this .npz instead "
                   "(arrays in stored order)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the random inputs (0)")
    p.add_argument("--grad", nargs="?", const="0", default=None, metavar="ARGNUMS",
                   help="differentiate with respect to these arguments (default 0; e.g. 1,2)")


def _peers():
    from ..bench import PEERS
    return PEERS


def build_parser():
    top = _Parser(prog="adjit", description="adjit: differentiate and compile numerical Python. "
                  "Run `adjit COMMAND --help` for each command's options and an example.",
                  formatter_class=argparse.RawDescriptionHelpFormatter,
                  epilog="examples:\n  " + "\n  ".join(
                      e.splitlines()[1].strip() for e in EXAMPLES.values()))
    sub = top.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def cmd(name, helptext):
        return sub.add_parser(name, help=helptext, description=helptext, epilog=EXAMPLES[name],
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    p = cmd("dump", "print a function's IR and what it compiles to, stage by stage")
    _add_trace_args(p)
    p.add_argument("--stage", default="traced", metavar="S",
                   help="traced | grad | optimized | fused | llvm | asm | cache | all, or a "
                        "comma-separated list (traced)")
    p.add_argument("--loc", action="store_true", help="print each equation's source location")
    p.set_defaults(func=cmd_dump)

    p = cmd("check", "parse IR text and run the verifier")
    p.add_argument("file", metavar="FILE.ir|-", help="IR text file, or - for standard input")
    p.set_defaults(func=cmd_check)

    p = cmd("graph", "draw a function's IR (one node per equation) as SVG, PNG or DOT")
    _add_trace_args(p)
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="out.svg | out.png | out.dot")
    p.add_argument("--optimize", action="store_true", help="draw the optimised graph")
    p.set_defaults(func=cmd_graph)

    p = cmd("bench", "time adjit against NumPy, PyTorch, JAX and HIPS autograd")
    p.add_argument("names", nargs="*", metavar="NAMES", help="workloads (default: all)")
    p.add_argument("--quick", action="store_true", help="few iterations (tests, CI)")
    p.add_argument("--json", metavar="OUT", help="write the results as JSON")
    p.add_argument("--plot", metavar="OUT.png", help="bar chart of the results (matplotlib)")
    p.add_argument("--only", metavar="IMPLS", help="run only these implementations, e.g. "
                   "adjit,numpy,jax (default: all of " + ", ".join(_peers()) + ")")
    p.add_argument("--list", action="store_true", help="list the workloads and exit")
    p.add_argument("--isolate", action="store_true",
                   help="run each implementation in its own process (separate peak RSS)")
    p.set_defaults(func=cmd_bench)

    p = cmd("demo", "a short guided run: train a small MLP with adjit")
    p.add_argument("--steps", type=int, default=200, help="training steps (200)")
    p.set_defaults(func=cmd_demo)

    p = cmd("notebook", "run a notebook of '# %% [In N]' cells and print each cell's output")
    p.add_argument("file", metavar="FILE.py", help="cell file with '# %% [In N]' markers")
    p.add_argument("--normalize", action="store_true", help="apply normalize() to the output")
    p.set_defaults(func=cmd_notebook)

    p = cmd("cache", "show or clear the on-disk cache of compiled code")
    p.add_argument("action", choices=("info", "clear"), help="info | clear")
    p.set_defaults(func=cmd_cache)
    return top


# ------------------------------------------------------------------------------ commands

def _pipeline(ns):
    from .load import (check_arity, load_function, load_npz, make_inputs, parse_arg_types,
                           trace)
    from .stages import Pipeline, parse_argnums
    if ns.args is None and ns.npz is None:
        raise CLIError('give the argument types with --args "f32[3,4] ..." (or --npz FILE)')
    types = parse_arg_types(ns.args) if ns.args is not None else None
    f, name, _ = load_function(ns.target)
    args = load_npz(ns.npz, types) if ns.npz else make_inputs(types, ns.seed)
    argnums = parse_argnums(ns.grad, len(args)) if ns.grad is not None else None
    check_arity(f, name, len(args))
    g = trace(f, args, name)
    return Pipeline(g, argnums, args, name)


def cmd_dump(ns):
    from .stages import TITLES, parse_stages, render
    stages = parse_stages(ns.stage)
    pipe = _pipeline(ns)
    out = sys.stdout
    for stage in stages:
        if len(stages) > 1:
            out.write(f"# ---- {stage}: {TITLES[stage]} ----\n")
        text = render(pipe, stage, locations=ns.loc)
        out.write(text)
        if len(stages) > 1:
            out.write("\n")
        out.flush()
    return 0


def cmd_check(ns):
    from .check import check_text
    from .load import read_text
    if ns.file == "-":
        text, label = read_text("-"), "<stdin>"
    else:
        text, label = read_text(ns.file), ns.file
    ok, lines = check_text(text, label)
    for ln in lines:
        print(ln)
    return 0 if ok else 1


def cmd_graph(ns):
    from ..viz.ir_graph import RenderError, graph_to_dot, render
    if os.path.splitext(ns.output)[1].lower() not in (".svg", ".png", ".dot", ".gv"):
        raise CLIError(f"cannot write {ns.output}: use .svg, .png or .dot")
    pipe = _pipeline(ns)
    g = pipe.final() if ns.optimize else pipe.target()
    groups = pipe.groups(g)
    dot = graph_to_dot(g, groups=groups)
    try:
        render(dot, ns.output)
    except RenderError as exc:
        print(f"adjit graph: {exc}", file=sys.stderr)
        return 1
    extra = f", {len(groups)} loop nests" if groups else ""
    print(f"wrote {ns.output} ({len(g.eqns)} equations{extra})")
    return 0


def cmd_bench(ns):
    from .bench import run_command
    return run_command(ns)


def cmd_notebook(ns):
    from .notebook import main as notebook_main
    if not os.path.isfile(ns.file):
        raise CLIError(f"no such file: {ns.file}")
    argv = [ns.file] + (["--normalize"] if ns.normalize else [])
    return notebook_main(argv)


def cmd_demo(ns):
    from .demo import run
    return run(steps=ns.steps)


def cmd_cache(ns):
    from ..runtime import cache as rc
    info = rc.cache_info()
    if ns.action == "info":
        print(f"path: {info.get('path')}")
        print(f"entries on disk: {info.get('disk_entries')} "
              f"({_size(info.get('size') or 0)})")
        if info.get("untrusted"):
            print(f"not used: the folder is {info['untrusted']} (compiled code stays in "
                  "memory; make it private, e.g. chmod 700)")
        print("(ADJIT_CACHE_DIR moves it; `adjit cache clear` empties it)")
        return 0
    rc.cache_clear(disk=True)
    left = rc.cache_info().get("disk_entries")
    print(f"removed {info.get('disk_entries', 0) - (left or 0)} entries from {info.get('path')}")
    return 0


def _size(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


# ------------------------------------------------------------------------------ entry point

def main(argv=None) -> int:
    """`adjit ...` (the console script) and `python -m adjit ...`; returns the exit status."""
    parser = build_parser()
    try:
        ns = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    except SystemExit as exc:  # --help (0) or a usage error (2)
        return int(exc.code or 0)
    if ns.command is None:
        parser.print_help()
        return 2
    ns.from_console = argv is None
    try:
        return int(ns.func(ns) or 0)
    except CLIError as exc:
        sys.stderr.write(f"adjit {ns.command}: error: {exc.msg}\n")
        if exc.detail:
            sys.stderr.write(exc.detail.rstrip("\n") + "\n")
        return 2
    except BrokenPipeError:  # `adjit dump ... | head`
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:  # pragma: no cover
            pass
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get("ADJIT_DEBUG"):
            raise
        msg = str(exc).strip().splitlines()
        sys.stderr.write(f"adjit {ns.command}: internal error: {type(exc).__name__}: "
                         f"{msg[0] if msg else ''} (ADJIT_DEBUG=1 shows the traceback)\n")
        return 3


if __name__ == "__main__":
    sys.exit(main())
