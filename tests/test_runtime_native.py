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
