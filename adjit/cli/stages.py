"""The stages `adjit dump` prints, from the traced IR down to machine code and the disk cache.

    traced     the forward IR (adjit.make_ir)
    grad       the adjoint IR (adjit.ir.autodiff.vjp_graph): forward first, then gradients
    optimized  after adjit.ir.passes.optimize
    fused      the loop nests codegen fuses the equations into
    llvm       LLVM IR before and after LLVM's -O3 pipeline
    asm        host assembly
    cache      the disk-cache key, the entry's path and whether it was a hit

The stages below `grad` work on the *compiled* graph: the adjoint when `--grad` is given, else
the forward graph.
"""
from __future__ import annotations

from .load import CLIError

STAGES = ("traced", "grad", "optimized", "fused", "llvm", "asm", "cache")
TITLES = {
    "traced": "forward IR",
    "grad": "adjoint IR (vjp_graph)",
    "optimized": "after adjit.ir.passes.optimize",
    "fused": "fused loop nests",
    "llvm": "LLVM IR",
    "asm": "host assembly",
    "cache": "disk cache",
}


def parse_stages(text: str):
    """`"traced,grad"` or `"all"` -> a tuple of stage names in pipeline order."""
    names = [s.strip() for s in (text or "traced").split(",") if s.strip()]
    if "all" in names:
        return STAGES
    bad = [s for s in names if s not in STAGES]
    if bad:
        raise CLIError(f"unknown stage {bad[0]!r} (stages: {', '.join(STAGES)}, all)")
    return tuple(s for s in STAGES if s in names)


def parse_argnums(text, n_args):
    """`"0"`, `"0,2"` -> (0, 2); every index must name an argument."""
    try:
        nums = tuple(int(t) for t in str(text).replace(" ", "").split(",") if t != "")
    except ValueError:
        raise CLIError(f"--grad takes argument positions like 0 or 0,1, not {text!r}") from None
    for i in nums:
        if not 0 <= i < n_args:
            raise CLIError(f"--grad {i}: the function has {n_args} argument(s)")
    if not nums:
        raise CLIError("--grad needs at least one argument position")
    return nums


class Pipeline:
    """Lazily computes each stage of one traced graph (each at most once)."""

    def __init__(self, traced, argnums=None, args=(), name="f"):
        self.traced = traced
        self.argnums = argnums
        self.args = list(args)
        self.name = name
        self._memo = {}
        self.symbol = None  # the native entry's name, once lowered

    def _once(self, key, fn):
        if key not in self._memo:
            self._memo[key] = fn()
        return self._memo[key]

    # ------------------------------------------------------------------ graphs
    def grad(self):
        from ..ir.autodiff import vjp_graph
        wrt = self.argnums if self.argnums is not None else (0,)
        return self._once("grad", lambda: vjp_graph(self.traced, wrt=wrt))

    def target(self):
        """The graph the lower stages compile."""
        return self.grad() if self.argnums is not None else self.traced

    def optimized(self):
        from ..ir.passes import optimize
        return self._once("optimized", lambda: optimize(self.target()))

    def final(self):
        """The optimised graph: what native code is compiled from."""
        return self.optimized()

    # ------------------------------------------------------------------ codegen, runtime
    def _plan(self, g):
        from ..codegen.fusion import plan
        from ..codegen.lower import LOWERINGS
        return self._once(("plan", id(g)), lambda: plan(g, LOWERINGS))

    def groups(self, g=None):
        """Loop nests of `g` (default `final()`) as lists of equation indices: each
        materialised value or guard with the equations inlined into it alone; None when codegen
        is missing or rejects the graph."""
        g = self.final() if g is None else g
        try:
            p = self._plan(g)
        except Exception:  # codegen rejects the graph: no nests to show
            return None
        return nests(g, p)[0]

    def fused_text(self):
        from ..ir.printer import print_graph
        g = self.final()
        p = self._plan(g)
        groups, shared = nests(g, p)
        lines = print_graph(g).splitlines()
        body = lines[1 + len(g.constvars):-1]  # one line per equation, as printed
        out = [f"# {len(groups)} loop nest(s) for {lines[0][4:-1]}"]
        for k, grp in enumerate(groups):
            roots = [i for i in grp if not g.eqns[i].outvars or
                     g.eqns[i].outvars[0] in p.materialised]
            writes = []
            for i in roots:
                if g.eqns[i].outvars:
                    v = g.eqns[i].outvars[0]
                    where = (f"output {p.out_slot[v]}" if v in p.out_slot
                             else "workspace buffer")
                    writes.append(f"{body[i].split('=')[0].strip()} ({where})")
            out.append(f"nest {k}: writes {', '.join(writes)}" if writes else
                       f"nest {k}: guard")
            for i in grp:
                tag = "" if i in roots else "    # inlined"
                out.append(f"  {body[i].strip()}{tag}")
        if shared:
            out.append("recomputed in several nests (cheap):")
            out += [f"  {body[i].strip()}" for i in shared]
        dead = [i for i, e in enumerate(g.eqns) if e in p.dead]
        if dead:
            out.append("dead (never computed):")
            out += [f"  {body[i].strip()}" for i in dead]
        return "\n".join(out) + "\n"

    def llvm(self):
        """(LLVM IR text before optimisation, after optimisation)."""
        def build():
            from ..codegen.lower import lower
            from ..runtime import engine
            text, meta = lower(self.final())
            self.symbol = meta.get("symbol")
            try:
                mod = engine.optimize(text, f"{self.name} (adjit dump)")
            except Exception as exc:
                raise CLIError(f"LLVM rejected the lowered code: {exc}") from None
            return str(text), mod
        text, mod = self._once("llvm", build)
        return text, str(mod)

    def asm(self):
        self.llvm()
        from ..runtime import engine
        return engine.emit_assembly(self._memo["llvm"][1])

    def cache(self):
        """`key`, `entry` (its file) and `hit` for the compiled graph in the disk cache; looking
        it up compiles and stores it on a miss, as a call would."""
        from ..runtime import cache as rc
        g = self.final()

        def probe():
            key = rc.disk_key(g.structure_key())
            path = rc._path(key)
            before = dict(rc.STATS)
            try:
                rc.compiled_for(g)
            except Exception as exc:  # CompileError: say why, do not crash
                raise CLIError(f"cannot compile {g.name}: {exc}") from None
            if rc.STATS["hits"] > before["hits"]:
                hit = "yes (in this process's memory)"
            elif rc.STATS["disk_hits"] > before["disk_hits"]:
                hit = "yes (object code loaded from disk)"
            else:
                hit = "no (compiled and stored)"
            return [("key", key), ("entry", path), ("hit", hit), ("dir", rc.cache_dir())]
        return "".join(f"{k}: {v}\n" for k, v in self._once("cache", probe))


def nests(g, p):
    """(groups, shared) from codegen's fusion plan `p`: each group lists the indices of the
    equations one loop nest computes (its root last); `shared` lists inlined equations that
    several nests recompute."""
    from ..ir.core import Lit
    root_of = {}
    for i in range(len(g.eqns) - 1, -1, -1):
        e = g.eqns[i]
        if e in p.dead:
            continue
        if not e.outvars or e.outvars[0] in p.materialised:
            root_of[i] = {i}
        uses = set()
        for j in range(i + 1, len(g.eqns)):
            if j in root_of and e.outvars and any(
                    not isinstance(x, Lit) and x is e.outvars[0] for x in g.eqns[j].inputs):
                c = g.eqns[j]
                uses |= {j} if (not c.outvars or c.outvars[0] in p.materialised) \
                    else root_of[j]
        if i not in root_of:
            root_of[i] = uses
    # roots that share one loop nest (codegen's sibling fusion: plan.loop) form one group
    loop = getattr(p, "loop", None) or {}
    nest_of = {r: loop.get(g.eqns[r], ("root", r)) for r in root_of if r in root_of[r]}
    groups, first, shared = {}, {}, []
    for i in sorted(root_of):
        ids = {nest_of[r] for r in root_of[i]}
        if len(ids) == 1:
            lid = next(iter(ids))
            first.setdefault(lid, i)
            groups.setdefault(lid, []).append(i)
        elif ids:
            shared.append(i)
    return [sorted(groups[k]) for k in sorted(groups, key=first.get)], shared


def _with_user_locations(g, files):
    """A copy of `g` for printing whose locations name the user's files only (relative to the
    working directory): equations made by a transform carry no meaningful location."""
    import os
    from ..ir.graph import Eqn, Graph
    cwd = os.getcwd() + os.sep
    eqns = []
    for e in g.eqns:
        loc = e.loc if e.loc and e.loc[0] in files else None
        if loc and loc[0].startswith(cwd):
            loc = (loc[0][len(cwd):], loc[1])
        eqns.append(Eqn(e.prim, e.inputs, e.params, e.outvars, loc))
    return Graph(g.invars, g.constvars, eqns, g.outvars, g.consts, g.name)


def render(pipe: Pipeline, stage: str, locations=False) -> str:
    """The text of one stage (IR stages print in the parseable text form)."""
    from ..ir.printer import print_graph
    if stage in ("traced", "grad", "optimized"):
        g = {"traced": lambda: pipe.traced, "grad": pipe.grad,
             "optimized": pipe.optimized}[stage]()
        if locations:
            files = {e.loc[0] for e in pipe.traced.eqns if e.loc}
            g = _with_user_locations(g, files)
        return print_graph(g, locations=locations)
    if stage == "fused":
        return pipe.fused_text().rstrip("\n") + "\n"
    if stage == "llvm":
        before, after = pipe.llvm()
        head = f"; graph {pipe.final().name}, native entry @{pipe.symbol}\n" if pipe.symbol \
            else ""
        return (f"{head}; ---- before optimisation ----\n{before.rstrip()}\n\n"
                f"; ---- after optimisation (-O3) ----\n{after.rstrip()}\n")
    if stage == "asm":
        return pipe.asm().rstrip("\n") + "\n"
    if stage == "cache":
        return pipe.cache()
    raise CLIError(f"unknown stage {stage!r}")  # pragma: no cover
