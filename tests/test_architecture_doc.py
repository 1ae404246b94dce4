"""docs/architecture.md draws the layers the import-linter contract enforces (pyproject.toml) and
lists every folder of the package (issue 13): a test keeps picture, contract and folders in step."""
from __future__ import annotations

import pathlib
import re

import adjit


def _package_files():
    root = pathlib.Path(__file__).resolve().parent.parent / "adjit"
    return root, sorted(root.rglob("*.py"))


# ------------------------------------------------------------------ the layers in the docs
def test_architecture_doc_draws_the_enforced_layers():
    """docs/architecture.md's picture lists the import-linter contract's layers, top to
    bottom, and its folder table every folder of the package."""
    import tomllib
    from peers import ROOT
    with open(f"{ROOT}/pyproject.toml", "rb") as f:
        contract = tomllib.load(f)["tool"]["importlinter"]["contracts"][0]
    layers = [m.strip() for layer in contract["layers"] for m in layer.split("|")]
    doc = open(f"{ROOT}/docs/architecture.md").read()
    picture = doc.split("```")[1]
    drawn = re.findall(r"^ (adjit/\w+)", picture, re.M)
    assert [d.replace("/", ".") for d in drawn] == layers
    root, files = _package_files()
    folders = {f.parent.relative_to(root.parent).as_posix() for f in files
               if f.name == "__init__.py" and f.parent != root}
    table = set(re.findall(r"^\| (adjit/[\w/]+)/ \|", doc, re.M))
    assert folders == table, folders ^ table


# ------------------------------------------------------------------ the Tensor stub
def test_tensor_stub_is_current():
    """adjit/tracer/tensor.pyi shows IDEs and grep the methods attached at import; it is
    generated, and regenerating it gives no diff."""
    import importlib.util
    from peers import ROOT
    spec = importlib.util.spec_from_file_location(
        "gen_tensor_stub", f"{ROOT}/scripts/gen_tensor_stub.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    text = gen.stub()
    assert gen.STUB.read_text() == text, "run python scripts/gen_tensor_stub.py"
    public = {n for n in dir(adjit.Tensor) if not n.startswith("_")}
    stubbed = set(re.findall(r"^    (?:def )?(\w+)", text, re.M))
    assert public - stubbed == set()


def test_numpy_doc_lists_the_dispatch_table():
    """docs/numpy.md's list of supported names is generated from np_dispatch; regenerating it
    gives no diff (issue 15 item 5)."""
    import importlib.util
    from peers import ROOT
    spec = importlib.util.spec_from_file_location(
        "gen_numpy_table", f"{ROOT}/scripts/gen_numpy_table.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    text = gen.DOC.read_text()
    assert gen.render(text) == text, "run python scripts/gen_numpy_table.py"
    from adjit.tracer import np_dispatch
    for name in list(np_dispatch.FUNCS)[:5] + list(np_dispatch.UFUNCS)[:5]:
        assert f"`{name}`" in text
