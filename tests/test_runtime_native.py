"""The runtime's native helpers: their LLVM IR is package data (ll/*.ll) filled in per target
and per BLAS library, and the futex system call number follows the target."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from adjit.runtime import engine, native


def _asm(text, triple):
    import llvmlite.binding as llvm
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    mod = llvm.parse_assembly(text)
    mod.triple = triple
    mod.verify()
    tm = llvm.Target.from_triple(triple).create_target_machine()
    return tm.emit_assembly(mod)


@pytest.mark.parametrize("triple,number", [("x86_64-unknown-linux-gnu", 202),
                                           ("aarch64-unknown-linux-gnu", 98)])
def test_futex_is_the_targets_system_call(triple, number):
    """Linux futex is 202 on x86_64 and 98 on aarch64 (202 is `accept` there): the number the
    helpers pass to syscall() is the target's, checked in the machine code for that target."""
    asm = _asm(native.threads_ir(triple), triple)
    # syscall's first argument: %edi on x86_64, w0 on aarch64 (two calls: wait and wake)
    first = r"movl\s+\$(\d+), %edi" if triple.startswith("x86_64") else r"mov\s+w0, #(\d+)"
    numbers = re.findall(first, asm)
    assert numbers.count(str(number)) == 2, numbers
    assert "202" not in numbers or number == 202, numbers


@pytest.mark.parametrize("triple", ["riscv64-unknown-linux-gnu", "x86_64-apple-darwin23",
                                    "arm64-apple-macosx14.0.0", "x86_64-pc-windows-msvc"])
def test_unsupported_targets_are_refused_by_name(triple):
    with pytest.raises(engine.CompileError, match=re.escape(triple)):
        native.threads_ir(triple)


@pytest.mark.parametrize("ilp64", [True, False])
@pytest.mark.parametrize("control", [True, False])
def test_every_blas_variant_is_valid_ir(ilp64, control):
    text = native.blas_ir(ilp64, control)
    engine.optimize(text, "blas helpers")
    # one GEMM template, filled in for both precisions
    assert text.count("define void @adjit_sgemm(") == 1
    assert text.count("define void @adjit_dgemm(") == 1


def test_no_llvm_ir_in_python_sources():
    root = os.path.dirname(native.__file__)
    for name in ("native.py", "blas.py", "engine.py"):
        with open(os.path.join(root, name)) as f:
            src = f.read()
        assert not re.search(r"^\s*(define|declare) ", src, re.M), name


def test_the_wheel_ships_the_helper_ir(tmp_path):
    """An installed wheel has ll/*.ll (package data), or no native helper could be built."""
    pytest.importorskip("setuptools")
    try:  # setuptools >= 70.1 builds wheels itself; older ones need the `wheel` package
        import setuptools.command.bdist_wheel  # noqa: F401
    except ImportError:
        pytest.importorskip("wheel", reason="no wheel builder (setuptools < 70.1 without wheel)")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(native.__file__)))
    src = tmp_path / "src"
    shutil.copytree(os.path.join(repo, "adjit"), src / "adjit",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(repo, f), src / f)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                        "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(src)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (wheel,) = (tmp_path / "dist").glob("adjit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    want = {f"adjit/runtime/ll/{f}" for f in os.listdir(native.LL_DIR) if f.endswith(".ll")}
    assert want and want <= names, want - names


def _within_product_bound(got, a, b):
    """|got - a @ b| <= k eps (|a| @ |b|) elementwise (k the inner dimension, eps the operands'
    precision): what any order of the k multiply-adds of each entry satisfies, computed
    in float64 (NumPy's `@` of the float64 operands as the reference)."""
    import numpy as np
    eps = np.finfo(got.dtype).eps
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    bound = a.shape[1] * eps * (np.abs(a64) @ np.abs(b64))
    return bool(np.all(np.abs(got.astype(np.float64) - a64 @ b64) <= bound))


@pytest.mark.usefixtures("native_tier")  # compares with native code's product
def test_matmul_is_native_codes_product_for_every_layout_or_declines():
    # runtime/native.py `matmul` (the interpreter's and the registry's 2-D products) for C- and
    # Fortran-ordered operands of both float dtypes: the bits of native code's product (the
    # same adjit_sgemm / adjit_dgemm route, docs/codegen.md "Tiers agree"), and NumPy's `@`
    # within k eps (|a| @ |b|) (not its bits: NumPy's threaded `@` may split the work
    # otherwise, e.g. float64 at 300x300x300); None (NumPy's own `@`) for what it does not take
    import numpy as np

    import adjit
    from adjit.runtime.call import CompiledGraph
    if not native.gemm_ready():
        native._gemm_link()
    assert native.gemm_ready()
    rng = np.random.default_rng(3)
    for dt in (np.float64, np.float32):
        for m, k, n in ((256, 784, 512), (784, 256, 512), (256, 512, 10), (70, 90, 50),
                        (300, 300, 300)):
            x = rng.standard_normal((m, k)).astype(dt)
            y = rng.standard_normal((k, n)).astype(dt)
            f = adjit.jit(lambda a, b: a @ b)
            f.compile(x, y)
            nat = np.asarray(f(x, y))  # (the tracing call's value is the registry's: matmul)
            (br,), = f.cache.values()
            assert type(br.graph.native) is CompiledGraph
            assert _within_product_bound(nat, x, y)
            for a in (x, np.asfortranarray(x)):
                for b in (y, np.asfortranarray(y)):
                    got = native.matmul(a, b)
                    assert got is not None and got.dtype == dt and got.flags.c_contiguous
                    assert np.array_equal(got, nat), (dt, m, k, n)
                    assert _within_product_bound(got, a, b), (dt, m, k, n)
            if m == k == n:  # the bound tells a wrong product: a transposed operand
                assert not _within_product_bound(native.matmul(np.ascontiguousarray(x.T), y),
                                                 x, y)
    x, y = rng.standard_normal((100, 100)), rng.standard_normal((100, 100))
    declined = [x[:, ::2], x.astype(">f8"), x.astype(np.int64), np.asmatrix(x),
                x[:8, :8]]  # strided, byte-swapped, integer, a subclass, small
    for a in declined:
        b = y[:a.shape[1]].astype(a.dtype) if a.dtype.kind == "i" else y[:a.shape[1]]
        assert native.matmul(a, np.ascontiguousarray(b)) is None, a
    buf = np.zeros(100 * 100 * 8 + 1, np.uint8)[1:].view(np.float64).reshape(100, 100)
    assert not buf.flags.aligned and native.matmul(buf, y) is None
    assert native.matmul(x, y[:50]) is None  # shapes that do not chain: NumPy's own error


def test_deterministic_mode_links_the_gemm_helpers_before_its_first_product(tmp_path):
    # the interpreter's large 2-D products go through adjit's GEMM helpers once they are linked
    # (float32 bits may differ from NumPy's `@`); in auto mode a cold cache compiles them in the
    # background, so under ADJIT_TIER=deterministic they are linked before the first product:
    # which products take which route never depends on timing
    import subprocess
    import sys
    code = """
import numpy as np
from adjit.runtime import interpreter, native
rng = np.random.default_rng(0)
x = rng.standard_normal((256, 784)).astype(np.float32)
y = rng.standard_normal((784, 512)).astype(np.float32)
first = interpreter._matmul(x, y)
assert native._GEMM_STATE["state"] == "ready", native._GEMM_STATE
assert np.array_equal(first, native.matmul(x, y))
assert np.array_equal(interpreter._matmul(x, y), first)
np.testing.assert_allclose(first, x.astype(np.float64) @ y.astype(np.float64), rtol=1e-4,
                           atol=3e-3)
print("ok")
"""
    env = dict(os.environ, ADJIT_TIER="deterministic", ADJIT_CACHE_DIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-3000:]
