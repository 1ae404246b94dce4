"""A small loader of ELF relocatable objects (x86-64 Linux): how this process runs native code
without LLVM.

The object code the compile worker (or the disk cache) hands over is an ELF64 relocatable file
(`ET_REL`) of the large code model with static relocations (runtime/engine.py's target
machine). `load(obj, symbols, imports, what)` maps it into one anonymous private mapping of
this process and returns a `Mapped` (the same interface as engine.Loaded: `.address`,
`.addresses`), so libLLVM is never loaded to *link* code:

- layout: one mapping, three page-aligned regions, each section at its own alignment:
  executable sections then the call stubs (read-execute), read-only sections then the GOT
  (read-only), writable and zero-filled sections (read-write). Everything is written while
  the mapping is read-write, then each region gets its final protection (mprotect): no page is
  ever writable and executable at once.
- relocations (RELA): R_X86_64_64, PC32, PLT32, 32, 32S, PC64, GOTPCREL, GOTPCRELX,
  REX_GOTPCRELX, GOTOFF64, GOTPC32, GOTPC64. A call (PLT32) to an external symbol goes through
  a stub in the mapping (`jmp *slot(%rip)`), since the library may be more than 2 GB away; a
  GOT-relative reference reads a slot of the mapping's GOT. Every 32-bit field is checked to
  fit.
- external symbols: `imports` (name -> address: adjit's helpers, BLAS, LAPACK, SciPy special
  functions, the Python C API; runtime/engine.py `import_address`), then the symbols of the
  process (the C library's math, memcpy/memset, ...), as LLJIT's `add_current_process` does.
- validation: every offset, size, index and name read from the file is checked against the
  file's length (or the section's) before use, so a damaged object raises `BadObject` (the
  disk cache discards the entry and compiles again) and never makes this process read or write
  out of bounds. What the loader does not implement (another relocation kind, thread-local or
  constructor sections, a symbol it cannot place) raises `Unsupported`: the caller links that
  object through LLJIT instead.
- lifetime: the mapping is unmapped when the `Mapped` goes, i.e. after the last holder of the
  code (runtime/call.py: the CompiledGraph, its ctypes entry, its builtin fastcall entry, the
  generated fast path) is gone.

Nothing here runs static constructors or registers unwind tables (.eh_frame is not loaded):
the generated code has neither constructors nor exceptions.
"""
from __future__ import annotations

import ctypes
import os
import platform
import struct
import sys

__all__ = ["available", "load", "Mapped", "BadObject", "Unsupported"]


class BadObject(ValueError):
    """The object file is malformed (truncated, an offset or index out of range)."""


class Unsupported(Exception):
    """The object uses something this loader does not implement (link it with LLJIT)."""


PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SYM = struct.Struct("<IBBHQQ")
_RELA = struct.Struct("<QQq")

# section types and flags
SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_RELA, SHT_NOBITS, SHT_REL = 1, 2, 3, 4, 8, 9
SHT_X86_64_UNWIND = 0x70000001
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR, SHF_TLS = 0x1, 0x2, 0x4, 0x400
SHN_UNDEF, SHN_LORESERVE, SHN_ABS, SHN_COMMON, SHN_XINDEX = 0, 0xff00, 0xfff1, 0xfff2, 0xffff
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
STT_TLS, STT_GNU_IFUNC = 6, 10

# relocation kinds: name, width in bytes
R_NONE, R_64, R_PC32, R_PLT32, R_GOTPCREL, R_32, R_32S = 0, 1, 2, 4, 9, 10, 11
R_PC64, R_GOTOFF64, R_GOTPC32, R_GOTPC64 = 24, 25, 26, 29
R_GOTPCRELX, R_REX_GOTPCRELX = 41, 42
RELOCATIONS = {R_64: "R_X86_64_64", R_PC32: "R_X86_64_PC32", R_PLT32: "R_X86_64_PLT32",
               R_GOTPCREL: "R_X86_64_GOTPCREL", R_32: "R_X86_64_32", R_32S: "R_X86_64_32S",
               R_PC64: "R_X86_64_PC64", R_GOTOFF64: "R_X86_64_GOTOFF64",
               R_GOTPC32: "R_X86_64_GOTPC32", R_GOTPC64: "R_X86_64_GOTPC64",
               R_GOTPCRELX: "R_X86_64_GOTPCRELX", R_REX_GOTPCRELX: "R_X86_64_REX_GOTPCRELX"}
_GOT_KINDS = (R_GOTPCREL, R_GOTPCRELX, R_REX_GOTPCRELX)
STUB = 16          # jmp *disp32(%rip) (6 bytes), then int3 padding
MAX_ALIGN = PAGE   # larger section alignments are not needed by generated code

PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
MAP_PRIVATE, MAP_ANONYMOUS = 0x02, 0x20
_MAP_FAILED = ctypes.c_void_p(-1).value

_libc = _process = None


def available() -> bool:
    """True where this loader runs (x86-64 Linux, CPython) and ADJIT_LOADER is not `lljit`."""
    if os.environ.get("ADJIT_LOADER", "").strip().lower() == "lljit":
        return False
    return sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")


def _c():
    global _libc
    if _libc is None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                              ctypes.c_int, ctypes.c_long]
        libc.mprotect.restype = ctypes.c_int
        libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        libc.munmap.restype = ctypes.c_int
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        _libc = libc
    return _libc


_memview = None


def _view(addr, size):
    """A writable memoryview of `size` bytes at `addr` (PyMemoryView_FromMemory)."""
    global _memview
    if _memview is None:
        fn = ctypes.pythonapi.PyMemoryView_FromMemory
        fn.restype = ctypes.py_object
        fn.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_int]
        _memview = fn
    return _memview(addr, size, 0x200)  # PyBUF_WRITE


def _process_symbol(name):
    """Address of `name` among the symbols of the process (dlsym(RTLD_DEFAULT)), or None."""
    global _process
    if _process is None:
        _process = ctypes.CDLL(None)
    try:
        return ctypes.cast(getattr(_process, name), ctypes.c_void_p).value
    except (AttributeError, ValueError):
        return None


def _align(n, a):
    return (n + a - 1) & -a


# ------------------------------------------------------------------------------- parsing
class _Section:
    __slots__ = ("index", "name", "type", "flags", "offset", "size", "link", "info", "align",
                 "entsize", "region", "at")

    def __init__(self, index, name, fields):
        self.index, self.name = index, name
        (_, self.type, self.flags, _, self.offset, self.size, self.link, self.info,
         self.align, self.entsize) = fields
        self.region = self.at = None


def _cstr(table: bytes, off: int, what: str) -> str:
    if not 0 <= off < len(table):
        raise BadObject(f"{what}: name offset {off} outside its string table ({len(table)} "
                        "bytes)")
    end = table.find(b"\0", off)
    if end < 0:
        raise BadObject(f"{what}: name at {off} is not terminated")
    try:
        return table[off:end].decode("ascii")
    except UnicodeDecodeError:
        raise BadObject(f"{what}: name at {off} is not ASCII") from None


def _bytes(obj, sec, what):
    """The file bytes of section `sec`, bounds-checked."""
    if sec.type == SHT_NOBITS:
        raise BadObject(f"{what} has no bytes in the file")
    if sec.offset > len(obj) or sec.size > len(obj) - sec.offset:
        raise BadObject(f"section {sec.index} ({what}): bytes {sec.offset}+{sec.size} beyond "
                        f"the end of the file ({len(obj)} bytes)")
    return obj[sec.offset:sec.offset + sec.size]


def parse(obj: bytes):
    """(sections, symbols, relocations) of ELF64 x86-64 relocatable `obj`, every field checked.

    symbols: list of (name, bind, type, shndx, value); relocations: list of (target section,
    offset, kind, symbol index, addend) for the loaded sections."""
    obj = bytes(obj)
    if len(obj) < _EHDR.size:
        raise BadObject(f"{len(obj)} bytes: shorter than an ELF header")
    (ident, e_type, e_machine, _, _, _, shoff, _, _, _, _, shentsize, shnum,
     shstrndx) = _EHDR.unpack_from(obj, 0)
    if ident[:4] != b"\x7fELF":
        raise BadObject("not an ELF file")
    if ident[4] != 2 or ident[5] != 1:
        raise BadObject("not a 64-bit little-endian ELF file")
    if e_type != 1:
        raise BadObject(f"ELF type {e_type}, expected a relocatable object (1)")
    if e_machine != 62:
        raise Unsupported(f"ELF machine {e_machine}: this loader handles x86-64 (62) only")
    if shentsize != _SHDR.size:
        raise BadObject(f"section header size {shentsize}, expected {_SHDR.size}")
    if shnum == 0 or shstrndx >= shnum:
        raise BadObject(f"{shnum} sections, name table {shstrndx}")
    if shoff > len(obj) or shnum * _SHDR.size > len(obj) - shoff:
        raise BadObject("section headers beyond the end of the file")
    raw = [_SHDR.unpack_from(obj, shoff + i * _SHDR.size) for i in range(shnum)]
    names_sec = _Section(shstrndx, "", raw[shstrndx])
    if names_sec.type != SHT_STRTAB:
        raise BadObject("the section name table is not a string table")
    names = _bytes(obj, names_sec, "section names")
    secs = [_Section(i, _cstr(names, f[0], f"section {i}") if i else "", f)
            for i, f in enumerate(raw)]

    symtab = None
    for s in secs[1:]:
        if s.type == SHT_SYMTAB:
            if symtab is not None:
                raise BadObject("two symbol tables")
            symtab = s
        if s.align and (s.align & (s.align - 1)):
            raise BadObject(f"section {s.name}: alignment {s.align} is not a power of two")
        if s.flags & SHF_ALLOC:
            if s.flags & SHF_TLS:
                raise Unsupported(f"section {s.name}: thread-local storage")
            if s.type == SHT_X86_64_UNWIND or s.name in (".eh_frame", ".eh_frame_hdr"):
                continue  # unwind tables: nothing throws through generated code
            if s.type not in (SHT_PROGBITS, SHT_NOBITS):
                raise Unsupported(f"section {s.name}: type {s.type:#x} (constructors?)")
            if s.align > MAX_ALIGN:
                raise Unsupported(f"section {s.name}: alignment {s.align}")
            if s.type == SHT_PROGBITS:
                _bytes(obj, s, s.name)
            elif s.size > 1 << 28:
                raise Unsupported(f"section {s.name}: {s.size} zero bytes")
            s.region = "text" if s.flags & SHF_EXECINSTR else \
                "data" if s.flags & SHF_WRITE or s.type == SHT_NOBITS else "rodata"
        elif s.type == SHT_REL:
            raise Unsupported(f"section {s.name}: REL relocations (x86-64 uses RELA)")

    symbols = []
    if symtab is not None:
        if symtab.entsize != _SYM.size or symtab.size % _SYM.size:
            raise BadObject(f"symbol table entries of {symtab.entsize} bytes, size "
                            f"{symtab.size}")
        if not 0 < symtab.link < len(secs) or secs[symtab.link].type != SHT_STRTAB:
            raise BadObject("the symbol table's string table is not a string table")
        data = _bytes(obj, symtab, "symbol table")
        strtab = _bytes(obj, secs[symtab.link], "symbol names")
        for i in range(symtab.size // _SYM.size):
            st_name, info, _, shndx, value, size = _SYM.unpack_from(data, i * _SYM.size)
            name = _cstr(strtab, st_name, f"symbol {i}") if st_name else ""
            bind, typ = info >> 4, info & 0xF
            if shndx == SHN_XINDEX:
                raise Unsupported(f"symbol {name}: extended section index")
            if shndx != SHN_UNDEF and shndx < SHN_LORESERVE:
                if shndx >= len(secs):
                    raise BadObject(f"symbol {name!r}: section {shndx} of {len(secs)}")
                if value > secs[shndx].size:
                    raise BadObject(f"symbol {name!r}: offset {value} beyond its section")
            symbols.append((name, bind, typ, shndx, value))

    relocs = []
    for s in secs[1:]:
        if s.type != SHT_RELA:
            continue
        if not 0 < s.info < len(secs):
            raise BadObject(f"relocation section {s.name}: target section {s.info}")
        target = secs[s.info]
        if target.region is None:
            continue  # relocations of what is not loaded (unwind tables, debug info)
        if symtab is None or s.link != symtab.index:
            raise BadObject(f"relocation section {s.name}: symbol table {s.link}")
        if s.entsize != _RELA.size or s.size % _RELA.size:
            raise BadObject(f"relocation section {s.name}: entries of {s.entsize} bytes")
        if target.type == SHT_NOBITS:
            raise BadObject(f"relocation section {s.name}: relocates zero-filled {target.name}")
        data = _bytes(obj, s, s.name)
        for j in range(s.size // _RELA.size):
            off, info, addend = _RELA.unpack_from(data, j * _RELA.size)
            kind, sym = info & 0xFFFFFFFF, info >> 32
            if kind == R_NONE:
                continue
            if kind not in RELOCATIONS:
                raise Unsupported(f"relocation type {kind} in {s.name}")
            width = 8 if kind in (R_64, R_PC64, R_GOTOFF64, R_GOTPC64) else 4
            if off > target.size or width > target.size - off:
                raise BadObject(f"relocation {j} of {s.name}: offset {off} outside "
                                f"{target.name} ({target.size} bytes)")
            if sym >= len(symbols):
                raise BadObject(f"relocation {j} of {s.name}: symbol {sym} of {len(symbols)}")
            relocs.append((target, off, kind, sym, addend, width))
    return secs, symbols, relocs


# ------------------------------------------------------------------------------- loading
class Mapped:
    """Loaded code: `.address` (the first exported symbol), `.addresses` (name -> address).
    The mapping is released when this object goes (everything that can enter the code holds
    it, runtime/call.py); `keep=True` never releases it (the runtime's own helpers, which a
    helper thread may be running at interpreter exit)."""
    __slots__ = ("base", "size", "address", "addresses", "keep", "__weakref__")

    def __init__(self, base, size, addresses, first, keep=False):
        self.base, self.size, self.keep = base, size, keep
        self.addresses = addresses
        self.address = addresses[first]

    def __del__(self, _finalizing=sys.is_finalizing):
        base, self.base = self.base, None
        if base and not self.keep and not _finalizing():
            _c().munmap(base, self.size)


def load(obj: bytes, symbols, imports: dict, what: str = "object", keep=False) -> Mapped:
    """Map relocatable object `obj` into this process; `symbols` are the global symbols to
    export (the first is `.address`), `imports` maps external names to addresses. Raises
    BadObject (malformed), Unsupported (use LLJIT) or LookupError (an unresolved symbol)."""
    obj = bytes(obj)
    secs, syms, relocs = parse(obj)
    loaded = [s for s in secs if s.region is not None]

    # externals reached through a stub (calls) or a GOT slot
    stub_of, got_of = {}, {}
    for target, off, kind, sym, addend, width in relocs:
        name, bind, typ, shndx, value = syms[sym]
        if kind == R_PLT32 and shndx == SHN_UNDEF:
            stub_of.setdefault(sym, len(stub_of))
        if kind in _GOT_KINDS:
            got_of.setdefault(sym, len(got_of))
    n_slots = len(got_of) + len(stub_of)

    # layout: text (+ stubs), rodata (+ GOT), data; each region page-aligned
    regions = {}
    at = 0
    for region in ("text", "rodata", "data"):
        start = at
        for s in loaded:
            if s.region == region:
                at = _align(at, max(s.align, 1))
                s.at = at
                at += s.size
        if region == "text" and stub_of:
            at = _align(at, 16)
            regions["stubs"] = at
            at += STUB * len(stub_of)
        if region == "rodata" and n_slots:
            at = _align(at, 8)
            regions["got"] = at
            at += 8 * n_slots
        at = _align(at, PAGE)
        regions[region] = (start, at)
    size = max(at, PAGE)

    libc = _c()
    base = libc.mmap(None, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    if base is None or base == _MAP_FAILED:
        raise MemoryError(f"{what}: mmap of {size} bytes failed (errno {ctypes.get_errno()})")
    mapped = Mapped(base, size, {"": base}, "")  # unmapped if anything below fails
    try:
        # a writable view of the mapping, made without a ctypes array type: `c_char * size`
        # would create a class per size (ctypes keeps them weakly), cyclic garbage per link
        # that feeds the collector's generations on the caller's thread
        mem = _view(base, size)
        for s in loaded:
            if s.type == SHT_PROGBITS and s.size:
                mem[s.at:s.at + s.size] = obj[s.offset:s.offset + s.size]

        addr = {}

        def resolve(i):
            a = addr.get(i)
            if a is not None:
                return a
            name, bind, typ, shndx, value = syms[i]
            if typ in (STT_TLS, STT_GNU_IFUNC):
                raise Unsupported(f"symbol {name}: type {typ}")
            if shndx == SHN_UNDEF:
                a = imports.get(name)
                if a is None:
                    a = _process_symbol(name) if name else None
                if a is None:
                    if bind == STB_WEAK:
                        a = 0
                    else:
                        raise LookupError(f"{what}: symbol {name!r} not found")
            elif shndx == SHN_ABS:
                a = value
            elif shndx >= SHN_LORESERVE:
                raise Unsupported(f"symbol {name}: section index {shndx:#x} (common?)")
            else:
                sec = secs[shndx]
                if sec.region is None:
                    raise Unsupported(f"symbol {name!r} in section {sec.name}, not loaded")
                a = base + sec.at + value
            addr[i] = a
            return a

        got = regions.get("got")
        slot_of = {}
        for sym, k in got_of.items():
            slot_of[sym] = base + got + 8 * k
            struct.pack_into("<Q", mem, got + 8 * k, resolve(sym))
        stub_addr = {}
        for sym, k in stub_of.items():
            slot = got + 8 * (len(got_of) + k)
            struct.pack_into("<Q", mem, slot, resolve(sym))
            at = regions["stubs"] + STUB * k
            # jmp *disp32(%rip): the slot relative to the end of this 6-byte instruction
            mem[at:at + STUB] = b"\xff\x25" + struct.pack("<i", slot - (at + 6)) + \
                b"\xcc" * (STUB - 6)
            stub_addr[sym] = base + at
        got_base = base + got if got is not None else base

        for target, off, kind, sym, addend, width in relocs:
            place = base + target.at + off
            if kind == R_PLT32 and sym in stub_addr:
                value = stub_addr[sym] + addend - place
            elif kind in _GOT_KINDS:
                value = slot_of[sym] + addend - place
            elif kind == R_GOTPC32 or kind == R_GOTPC64:
                value = got_base + addend - place
            elif kind == R_GOTOFF64:
                value = resolve(sym) + addend - got_base
            elif kind in (R_PC32, R_PLT32, R_PC64):
                value = resolve(sym) + addend - place
            else:  # R_64, R_32, R_32S
                value = resolve(sym) + addend
            pos = target.at + off
            if width == 8:
                struct.pack_into("<Q", mem, pos, value & 0xFFFFFFFFFFFFFFFF)
            elif kind == R_32:
                if not 0 <= value < 1 << 32:
                    raise Unsupported(f"{RELOCATIONS[kind]} to {syms[sym][0]!r}: out of range")
                struct.pack_into("<I", mem, pos, value)
            else:
                if not -(1 << 31) <= value < 1 << 31:
                    raise Unsupported(f"{RELOCATIONS[kind]} to {syms[sym][0]!r}: more than "
                                      "2 GB away")
                struct.pack_into("<i", mem, pos, value)

        out = {}
        for want in symbols:
            for i, (name, bind, typ, shndx, value) in enumerate(syms):
                if name == want and bind != STB_LOCAL and shndx != SHN_UNDEF:
                    out[want] = resolve(i)
                    break
            else:
                raise LookupError(f"{what}: symbol {want!r} is not defined by the object")
        del mem

        for region, prot in (("text", PROT_READ | PROT_EXEC), ("rodata", PROT_READ)):
            start, end = regions[region]
            if end > start and libc.mprotect(base + start, end - start, prot) != 0:
                raise Unsupported(f"{what}: mprotect failed (errno {ctypes.get_errno()})")
    except BaseException:
        mapped.base = None  # (a traceback keeps this frame: unmap now, not with `mapped`)
        libc.munmap(base, size)
        raise
    mapped.addresses = out
    mapped.address = out[symbols[0]] if symbols else base
    mapped.keep = keep
    return mapped
