"""IR types: a dtype name and a shape. `f32[3,4]`, `i64[]`, `bool[5]`."""
from __future__ import annotations

import struct
from math import prod

import numpy as np

# IR dtype name <-> NumPy dtype. The IR speaks these five names only.
DTYPES = {
    "f32": np.dtype(np.float32),
    "f64": np.dtype(np.float64),
    "i32": np.dtype(np.int32),
    "i64": np.dtype(np.int64),
    "bool": np.dtype(np.bool_),
}
NAME_OF = {v: k for k, v in DTYPES.items()}
# dtype sets, defined here once (the registry, codegen and the fronts import them)
FLOATS = ("f32", "f64")
INTS = ("i32", "i64")
NUMERIC = FLOATS + INTS
ALL = NUMERIC + ("bool",)


def dtype_name(dt) -> str:
    """The IR name of a NumPy dtype (or of an IR name), or a TypeError naming it."""
    if isinstance(dt, str) and dt in DTYPES:
        return dt
    try:
        # a NumPy dtype object (the common case) found without np.dtype(dt) (~0.15 us)
        name = NAME_OF.get(dt)
        return name if name is not None else NAME_OF[np.dtype(dt)]
    except (KeyError, TypeError):
        raise TypeError(f"adjit supports float32, float64, int32, int64 and bool arrays, "
                        f"not {dt!r}") from None


# an array's byte count is an intp (NumPy's rule, and native code's index arithmetic): the most
# elements of each dtype, counting only the nonzero dimensions (NumPy's own check in array
# creation: an empty array's other dimensions may not overflow either)
_INTP_MAX = 2**63 - 1
_MAX_ELEMENTS = {name: _INTP_MAX // dt.itemsize for name, dt in DTYPES.items()}
_SAFE_ELEMENTS = min(_MAX_ELEMENTS.values())  # every dtype holds fewer elements


def _check_shape(shape, dtype):
    """A ValueError when no array of `shape` and `dtype` can exist: a negative dimension, or
    itemsize times the product of the nonzero dimensions beyond an intp (NumPy: 'array is
    too big'). Such a type would wrap native code's size arithmetic."""
    n = 1
    for d in shape:
        if d < 0:
            raise ValueError(f"negative dimensions are not allowed: shape {shape}")
        if d:
            n *= d
    if n > _MAX_ELEMENTS[dtype]:
        raise ValueError(f"array is too big: shape {shape} of {dtype} is "
                         f"{n * DTYPES[dtype].itemsize} bytes counting its nonzero dimensions, "
                         f"beyond the largest intp {_INTP_MAX} (NumPy refuses it too)")


# A Python float's 8 bytes: the key of a float literal where its value alone would merge what
# must stay apart (0.0 and -0.0 compare equal; float.hex gives "nan" for every NaN, whatever
# its sign bit or payload, which NumPy's arithmetic carries into results)
float_bits = struct.Struct("<d").pack


def is_float(name: str) -> bool:
    return name in FLOATS


class AType:
    """The type of an IR value: shape (tuple of ints) and dtype name."""
    __slots__ = ("shape", "dtype")
    weak = False

    def __init__(self, shape, dtype):
        # (map, not a generator expression: half the cost of a new type, which every new
        # shape's rule makes)
        self.shape = shape = tuple(map(int, shape))
        self.dtype = dtype = (dtype if dtype.__class__ is str and dtype in DTYPES
                              else dtype_name(dtype))
        # (math.prod, then one comparison with the 8-byte bound: the full check only for a
        # product that is zero, negative or big)
        if not 0 < prod(shape) < _SAFE_ELEMENTS:
            _check_shape(shape, dtype)

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def np_dtype(self):
        return DTYPES[self.dtype]

    def __eq__(self, other):
        return (isinstance(other, AType) and self.shape == other.shape
                and self.dtype == other.dtype)

    def __hash__(self):
        return hash((self.shape, self.dtype))

    def __str__(self):
        return f"{self.dtype}[{','.join(map(str, self.shape))}]"

    __repr__ = __str__


def parse_type(text: str) -> AType:
    """`f32[3,4]` -> AType((3, 4), 'f32'). Raises ValueError on a malformed string."""
    text = text.strip()
    if not text.endswith("]") or "[" not in text:
        raise ValueError(f"not a type: {text!r} (expected e.g. f32[3,4])")
    name, dims = text[:-1].split("[", 1)
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r} in {text!r} (one of {', '.join(DTYPES)})")
    dims = dims.strip()
    try:
        shape = tuple(int(d) for d in dims.split(",")) if dims else ()
    except ValueError:
        raise ValueError(f"bad shape in {text!r}") from None
    if any(d < 0 for d in shape):
        raise ValueError(f"negative dimension in {text!r}")
    return AType(shape, name)
