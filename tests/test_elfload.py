"""The ELF object loader (adjit/runtime/elfload.py): how this process runs native code without
LLVM (issue 14 item 7, issue 18 item 7). Results through the loader are bit-identical to
LLJIT's for the same object code and agree with NumPy/SciPy; libLLVM is never mapped when the
compile worker compiles; an object the loader does not handle is linked by LLJIT; a damaged
object is refused with a clean error (the disk cache then recompiles), never a segfault; the
mapping goes when its last holder goes."""
from __future__ import annotations

import gc
import json
import os
import random
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from adjit.ir import parse_graph
from adjit.runtime import cache, cache_clear, elfload, engine, get_compiled

pytestmark = pytest.mark.skipif(not elfload.available(), reason="ELF loader: x86-64 Linux only")

G = "def f(a: f64[{n}]) -> f64[{n}]:\n  b: f64[{n}] = sin a\n  c: f64[{n}] = mul b 3.0\n  return c\n"


def _run(code, env=None):
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                       text=True, timeout=600, env={**os.environ, **(env or {})})
    return r


def _obj(n=7):
    from adjit.runtime.compile import compile_object
    return compile_object(parse_graph(G.format(n=n)))


# a sample of workloads: elementwise, reductions, products (BLAS), LAPACK, SciPy special
SAMPLE = """
import json, sys, numpy as np, scipy.special as sp, adjit
from adjit.runtime import engine
rng = np.random.default_rng(0)
x = rng.standard_normal((64, 48)); w = rng.standard_normal((48, 32))
xf, wf = x.astype(np.float32), w.astype(np.float32)
a = rng.standard_normal((6, 6)); spd = a @ a.T + 6 * np.eye(6); b = rng.standard_normal((6, 2))
cases = {
    "elementwise": (lambda x: np.tanh(x) * 2.0 + np.exp(-x * x) / (1.0 + x ** 2), (x,)),
    "reductions": (lambda x: (x.sum(axis=0), np.max(x, axis=1), x.mean(), (x * x).sum()), (x,)),
    "f32 sum": (lambda x: (x.sum(), x.sum(axis=1)), (xf,)),
    "matmul f64": (lambda x, w: np.tanh(x @ w), (x, w)),
    "matmul f32": (lambda x, w: x @ w + 1.0, (xf, wf)),
    "grad of an MLP": (adjit.grad(lambda w, x: np.tanh(x @ w).sum()), (w, x)),
    "lapack solve": (lambda a, b: np.linalg.solve(a, b), (spd, b)),
    "lapack cholesky": (lambda a: np.linalg.cholesky(a), (spd,)),
    "special": (lambda x: sp.gammaln(np.abs(x) + 0.5) + sp.erf(x), (x,)),
}
out = {}
for name, (f, args) in cases.items():
    y = adjit.jit(f, compile="eager")(*args)
    ys = y if isinstance(y, tuple) else (y,)
    out[name] = [[np.asarray(v).tobytes().hex(), np.asarray(v).dtype.str, list(np.shape(v))]
                 for v in ys]
print(json.dumps({"out": out, "links": engine.LINKS,
                  "llvm": any("llvmlite" in l for l in open("/proc/self/maps"))}))
"""


def _sample(tmp_path, loader):
    r = _run(SAMPLE, {"ADJIT_CACHE_DIR": str(tmp_path), "ADJIT_LOADER": loader,
                      "ADJIT_TIER": "native"})
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def _arrays(res):
    return {k: [np.frombuffer(bytes.fromhex(h), np.dtype(dt)).reshape(shape)
                for h, dt, shape in v] for k, v in res["out"].items()}


def test_loader_and_lljit_agree_bit_for_bit(tmp_path):
    # the same object code (the second process loads the first one's disk entries) through
    # both linkers: the same bits. And both agree with NumPy/SciPy.
    import scipy.special as sp
    elf = _sample(tmp_path, "elf")
    lljit = _sample(tmp_path, "lljit")
    assert elf["links"]["elf"] > 0 and elf["links"]["lljit"] == 0, elf["links"]
    assert lljit["links"]["lljit"] > 0 and lljit["links"]["elf"] == 0, lljit["links"]
    assert not elf["llvm"], "the loader process mapped libLLVM"
    assert elf["out"] == lljit["out"]
    got = _arrays(elf)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 48))
    w = rng.standard_normal((48, 32))
    a = rng.standard_normal((6, 6))
    spd = a @ a.T + 6 * np.eye(6)
    b = rng.standard_normal((6, 2))
    xf, wf = x.astype(np.float32), w.astype(np.float32)
    want = {
        "elementwise": [np.tanh(x) * 2.0 + np.exp(-x * x) / (1.0 + x ** 2)],
        "reductions": [x.sum(axis=0), np.max(x, axis=1), x.mean(), (x * x).sum()],
        "f32 sum": [xf.sum(), xf.sum(axis=1)],
        "matmul f64": [np.tanh(x @ w)],
        "matmul f32": [xf @ wf + 1.0],
        "grad of an MLP": [x.T @ (1 - np.tanh(x @ w) ** 2)],
        "lapack solve": [np.linalg.solve(spd, b)],
        "lapack cholesky": [np.linalg.cholesky(spd)],
        "special": [sp.gammaln(np.abs(x) + 0.5) + sp.erf(x)],
    }
    for k, ws in want.items():
        assert len(got[k]) == len(ws), k
        for g_, w_ in zip(got[k], ws):
            tol = 1e-5 if g_.dtype == np.float32 else 1e-10
            np.testing.assert_allclose(g_, w_, rtol=tol, atol=tol, err_msg=k)


def test_auto_tier_never_maps_libllvm(tmp_path):
    # the default tier: compiles in the worker, code loaded by elfload; not a page of libLLVM
    r = _run("""
        import sys, numpy as np, adjit
        from adjit import runtime
        from adjit.runtime import engine
        jf = adjit.jit(lambda x, w: np.tanh(x @ w).sum() + np.sin(x).sum())
        x, w = np.linspace(-1, 2, 60).reshape(6, 10), np.ones((10, 3))
        for i in range(3 * runtime.HOT_CALLS):
            y = jf(x, w)
            if i == runtime.HOT_CALLS:
                runtime.wait_for_compiles()
        assert engine.LINKS["elf"] >= 1 and not engine.LINKS["lljit"], engine.LINKS
        print(sum("llvmlite" in l for l in open("/proc/self/maps")),
              "llvmlite.binding" in sys.modules, float(y))
    """, {"ADJIT_CACHE_DIR": str(tmp_path), "ADJIT_TIER": "auto"})
    assert r.returncode == 0, r.stderr[-3000:]
    mapped, imported, y = r.stdout.split()
    x, w = np.linspace(-1, 2, 60).reshape(6, 10), np.ones((10, 3))
    np.testing.assert_allclose(float(y), np.tanh(x @ w).sum() + np.sin(x).sum(), rtol=1e-12, atol=1e-12)
    assert (mapped, imported) == ("0", "False")


@pytest.mark.usefixtures("native_tier")
def test_unsupported_object_falls_back_to_lljit(monkeypatch):
    # an object using a relocation the loader does not implement (here: it is told R_X86_64_64
    # is unknown) is linked by LLJIT instead, with the same results
    monkeypatch.setattr(elfload, "RELOCATIONS",
                        {k: v for k, v in elfload.RELOCATIONS.items() if k != elfload.R_64})
    obj, _ = _obj()
    with pytest.raises(elfload.Unsupported, match="relocation type 1"):
        elfload.load(obj, ["adjit_entry"], {}, "test")
    cache_clear()
    before = dict(engine.LINKS)
    x = np.linspace(0, 1, 11)
    (out,) = get_compiled(parse_graph(G.format(n=11)))([x])
    np.testing.assert_allclose(out, np.sin(x) * 3.0, rtol=1e-15)
    assert engine.LINKS["elf_unsupported"] > before["elf_unsupported"]
    assert engine.LINKS["lljit"] > before["lljit"]
    cache_clear()


def test_mapping_is_released_with_its_last_holder():
    obj, meta = _obj(9)

    def mapped(base):
        with open("/proc/self/maps") as f:
            return any(int(ln.split("-")[0], 16) == base for ln in f)
    m = elfload.load(obj, ["adjit_entry"], {}, "test")
    base = m.base
    assert mapped(base)
    import ctypes
    fn = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p)(m.address)
    a, o, ws = np.linspace(0, 1, 9), np.empty(9), np.empty(0, np.uint8)
    assert fn((ctypes.c_void_p * 3)(a.ctypes.data, o.ctypes.data, ws.ctypes.data)) == 0
    np.testing.assert_allclose(o, np.sin(a) * 3.0, rtol=1e-15)
    del m
    gc.collect()
    assert not mapped(base)


def test_text_is_never_writable():
    obj, _ = _obj(10)
    m = elfload.load(obj, ["adjit_entry"], {}, "test")
    with open("/proc/self/maps") as f:
        perms = [ln.split()[1] for ln in f
                 if m.base <= int(ln.split("-")[0], 16) < m.base + m.size]
    assert perms and all(not ("w" in p and "x" in p) for p in perms), perms
    assert any("x" in p for p in perms)


# the fuzzer of the loader's parsing, in a subprocess (a bad bounds check would segfault)
FUZZ = """
import random, sys
from adjit.runtime import elfload
obj = bytes.fromhex(sys.stdin.read())
rng = random.Random(0)
outcomes = {}
for i in range(1500):
    b = bytearray(obj)
    for _ in range(rng.choice((1, 2, 4, 8))):
        # the headers, the section table and the symbol and relocation tables
        pos = rng.randrange(len(b)) if rng.random() < 0.5 else rng.choice(
            [rng.randrange(64), len(b) - 1 - rng.randrange(min(len(b), 1024))])
        b[pos] = rng.randrange(256)
    if rng.random() < 0.1:
        b = b[:rng.randrange(len(b))]
    try:
        elfload.load(bytes(b), ["adjit_entry"], {}, "fuzz")
        k = "loaded"
    except (elfload.BadObject, elfload.Unsupported, LookupError, MemoryError) as exc:
        k = type(exc).__name__
    outcomes[k] = outcomes.get(k, 0) + 1
print(outcomes)
"""


def test_damaged_objects_never_crash_the_loader():
    obj, _ = _obj(12)
    r = subprocess.run([sys.executable, "-c", FUZZ], input=obj.hex(), capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, (r.returncode, r.stderr[-3000:])
    outcomes = eval(r.stdout)
    assert outcomes.get("BadObject", 0) > 100, outcomes


@pytest.mark.parametrize("tier", ["native", "deterministic"])
def test_damaged_disk_entry_is_discarded_and_recompiled(tmp_path, monkeypatch, tier):
    # an entry whose checksum is right but whose object code is malformed (written by a buggy
    # or foreign writer): a warning, the entry discarded, the graph compiled again, NumPy's
    # answer; in the calling thread (native) or the worker client's (deterministic, as auto)
    from adjit import runtime
    monkeypatch.setenv("ADJIT_TIER", "native")
    monkeypatch.setenv("ADJIT_CACHE_DIR", str(tmp_path))
    cache_clear()
    g = G.format(n=13)
    x = np.linspace(-1, 1, 13)
    get_compiled(parse_graph(g))([x])
    (entry,) = sorted(tmp_path.rglob("*.o"))
    key = entry.name[:-2]
    obj, meta = cache.read_entry(key)
    bad = bytearray(obj)
    bad[0x28:0x30] = (len(obj) * 4).to_bytes(8, "little")   # e_shoff beyond the end
    meta = {k: v for k, v in meta.items() if k not in ("key", "length")}
    cache.write_entry(key, bytes(bad), meta)
    with pytest.raises(engine.CompileError, match="damaged object code"):
        engine.load_many(bytes(bad), [meta["symbol"]], {}, "test")
    cache_clear()
    monkeypatch.setenv("ADJIT_TIER", tier)
    before = dict(cache.STATS)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        if tier == "native":
            (out,) = get_compiled(parse_graph(g))([x])
        else:  # the 20th call waits for the code
            pg = parse_graph(g)
            for _ in range(runtime.HOT_CALLS):
                (out,) = runtime.run_graph(pg, [x])
            assert not isinstance(pg.native, runtime.Interpreted)
    np.testing.assert_allclose(out, np.sin(x) * 3.0, rtol=1e-15)
    msgs = [str(m.message) for m in w]
    assert any("discarding cache entry" in m and "damaged object code" in m for m in msgs), msgs
    assert cache.STATS["compiles" if tier == "native" else "background_compiles"] == \
        before["compiles" if tier == "native" else "background_compiles"] + 1
    assert cache.read_entry(key)[0] == obj   # the recompiled entry replaced it
    cache_clear()


def test_every_relocation_kind():
    # a hand-made object: a function calling an external (PLT32 via a stub, the library may be
    # far away), reading a GOT slot (REX_GOTPCRELX), a PC32 reference to rodata and an
    # absolute 64-bit address of data; checked by running it
    import ctypes
    obj = _handmade()
    libc = ctypes.CDLL(None)
    labs = ctypes.cast(libc.labs, ctypes.c_void_p).value
    m = elfload.load(obj, ["f"], {"ext": labs}, "handmade")
    f = ctypes.CFUNCTYPE(ctypes.c_long, ctypes.c_long)(m.address)
    # f(x) = labs(x) + *got(ext2) [= 5] + rodata[0] [= 100] + *data64 [= 1000]
    assert f(-7) == 7 + 5 + 100 + 1000
    assert f(3) == 3 + 5 + 100 + 1000


def _handmade():
    """An ELF64 relocatable object with one text, one rodata and one data section."""
    import struct
    # text: f(x):
    #   push rbx                       53
    #   call ext@PLT                   e8 <PLT32 ext -4>
    #   mov rbx, rax                   48 89 c3
    #   mov rax, [rip + ext2@GOTPCREL] 48 8b 05 <REX_GOTPCRELX ext2 -4>
    #   add rbx, [rax]                 48 03 18
    #   add rbx, [rip + rodata]        48 03 1d <PC32 .rodata -4>
    #   movabs rax, data               48 b8 <R_64 .data +0>
    #   add rbx, [rax]                 48 03 18
    #   mov rax, rbx                   48 89 d8
    #   pop rbx                        5b
    #   ret                            c3
    text = bytearray()
    relocs = []
    text += b"\x53"
    text += b"\xe8"; relocs.append((len(text), 4, 3, -4)); text += b"\0" * 4   # PLT32 ext
    text += b"\x48\x89\xc3"
    text += b"\x48\x8b\x05"; relocs.append((len(text), 42, 5, -4)); text += b"\0" * 4
    text += b"\x48\x03\x18"
    text += b"\x48\x03\x1d"; relocs.append((len(text), 2, 1, -4)); text += b"\0" * 4
    text += b"\x48\xb8"; relocs.append((len(text), 1, 2, 0)); text += b"\0" * 8
    text += b"\x48\x03\x18\x48\x89\xd8\x5b\xc3"
    rodata = struct.pack("<q", 100)
    data = struct.pack("<q", 1000)
    ext2 = struct.pack("<q", 5)   # the object ext2 lives in rodata2 (a global symbol)
    strtab = b"\0f\0ext\0ext2\0"
    shstr = b"\0.text\0.rodata\0.data\0.rela.text\0.symtab\0.strtab\0.shstrtab\0.rodata2\0"

    def name(s):
        return shstr.index(s.encode() + b"\0")
    # symbols: 0 null, 1 .rodata (section), 2 .data (section), 3 ext (UND), 4 f, 5 ext2
    sym = struct.Struct("<IBBHQQ")
    syms = (sym.pack(0, 0, 0, 0, 0, 0) + sym.pack(0, 3, 0, 2, 0, 0) +
            sym.pack(0, 3, 0, 3, 0, 0) + sym.pack(3, 0x10, 0, 0, 0, 0) +
            sym.pack(1, 0x12, 0, 1, 0, len(text)) + sym.pack(7, 0x11, 0, 8, 0, 8))
    rela = b"".join(struct.pack("<QQq", off, (s << 32) | kind, add)
                    for off, kind, s, add in relocs)
    body = bytearray(b"\0" * 64)
    offs = {}
    for key, blob in (("text", text), ("rodata", rodata), ("data", data), ("rela", rela),
                      ("symtab", syms), ("strtab", strtab), ("shstr", shstr),
                      ("rodata2", ext2)):
        while len(body) % 16:
            body.append(0)
        offs[key] = len(body)
        body += blob
    while len(body) % 8:
        body.append(0)
    shoff = len(body)
    sh = struct.Struct("<IIQQQQIIQQ")
    shdrs = [sh.pack(0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
             sh.pack(name(".text"), 1, 6, 0, offs["text"], len(text), 0, 0, 16, 0),
             sh.pack(name(".rodata"), 1, 2, 0, offs["rodata"], 8, 0, 0, 8, 0),
             sh.pack(name(".data"), 1, 3, 0, offs["data"], 8, 0, 0, 8, 0),
             sh.pack(name(".rela.text"), 4, 0x40, 0, offs["rela"], len(rela), 5, 1, 8, 24),
             sh.pack(name(".symtab"), 2, 0, 0, offs["symtab"], len(syms), 6, 3, 8, 24),
             sh.pack(name(".strtab"), 3, 0, 0, offs["strtab"], len(strtab), 0, 0, 1, 0),
             sh.pack(name(".shstrtab"), 3, 0, 0, offs["shstr"], len(shstr), 0, 0, 1, 0),
             sh.pack(name(".rodata2"), 1, 2, 0, offs["rodata2"], 8, 0, 0, 8, 0)]
    body += b"".join(shdrs)
    ehdr = struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01" + b"\0" * 9, 1, 62, 1, 0,
                       0, shoff, 0, 64, 0, 0, 64, len(shdrs), 7)
    body[:64] = ehdr
    return bytes(body)
