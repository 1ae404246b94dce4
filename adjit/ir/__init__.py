"""The IR: types, recorder, graphs, printer/parser, verifier, primitives, transforms."""
from .types import AType, DTYPES, dtype_name, parse_type
from .core import (Node, Lit, Primitive, REGISTRY, bind, new_trace, EAGER, STATE, GuardFailed,
                   register)
from . import prims  # noqa: F401  registers the primitives
from .graph import Graph, Var, Eqn, extract, eval_graph
from .printer import print_graph
from .parser import parse_graph, ParseError
from .verify import verify, VerifyError
