"""Tensor factories and module-level functions (`adjit.tensor`, `adjit.ones`, `adjit.cat`...)."""
from __future__ import annotations

import math
import numbers
import warnings
import zlib

import numpy as np

from .._fp import quiet_fp
from ..ir import ops
from ..ir.core import REGISTRY, STATE
from .grad_fn import tag
from .tensor import Tensor, shape_error, to_np_dtype
from . import einsum_torch, tensor_ops, torch_composites

_rng = np.random.default_rng()


def manual_seed(seed):
    global _rng
    _rng = np.random.default_rng(int(seed))
    return _rng


def _infer_kind(data):
    """The widest kind in nested data ('b' < 'i' < 'f'); PyTorch's errors for other types."""
    if isinstance(data, Tensor):
        return data._n.val.dtype.kind
    if isinstance(data, (bool, np.bool_)):
        return "b"
    if isinstance(data, numbers.Integral):
        return "i"
    if isinstance(data, numbers.Real):
        return "f"
    if isinstance(data, np.ndarray):
        return data.dtype.kind
    if isinstance(data, (list, tuple)):
        kinds = [_infer_kind(d) for d in data]
        order = {"b": 0, "u": 1, "i": 1, "f": 2}
        return max(kinds, key=lambda k: order.get(k, 0)) if kinds else "f"
    if isinstance(data, str):
        raise TypeError(f"new(): invalid data type '{type(data).__name__}'")
    raise RuntimeError(f"Could not infer dtype of {type(data).__name__}")


def _sizes(data):
    """The shape PyTorch reads from the first element at each depth (a str there would nest
    forever: PyTorch gives up with 'too many dimensions')."""
    shape = []
    while isinstance(data, (list, tuple, str, Tensor, np.ndarray)):
        if isinstance(data, (Tensor, np.ndarray)):
            return shape + list(np.shape(data._n.val if isinstance(data, Tensor) else data))
        if isinstance(data, str):
            raise ValueError(f"too many dimensions '{type(data).__name__}'")
        shape.append(len(data))
        if not data:
            break
        data = data[0]
    return shape


def _check_ragged(data, shape, dim=0):
    if dim >= len(shape) or not isinstance(data, (list, tuple)):
        return
    for d in data:
        if dim + 1 < len(shape):
            if not isinstance(d, (list, tuple, Tensor, np.ndarray)):
                raise TypeError("not a sequence")
            if len(d) != shape[dim + 1]:
                raise ValueError(f"expected sequence of length {shape[dim + 1]} at dim "
                                 f"{dim + 1} (got {len(d)})")
            _check_ragged(d, shape, dim + 1)


def _unwrap(data):
    if isinstance(data, Tensor):
        return data._n.val
    if isinstance(data, (list, tuple)):
        return [_unwrap(d) for d in data]
    return data


@quiet_fp  # a value beyond the dtype's range is inf, silently as in PyTorch
def tensor(data, dtype=None, device=None, requires_grad=False, pin_memory=False):
    """`adjit.tensor([1., 2.], requires_grad=True)`: a new leaf tensor (a copy of `data`)."""
    if isinstance(data, Tensor):
        warnings.warn("To copy construct from a tensor, it is recommended to use "
                      "sourceTensor.detach().clone() or "
                      "sourceTensor.detach().clone().requires_grad_(True), rather than "
                      "torch.tensor(sourceTensor).", UserWarning, stacklevel=2)
    if isinstance(data, str):
        raise TypeError(f"new(): invalid data type '{type(data).__name__}'")
    _check_device(device, "tensor", (data,))
    if pin_memory:
        raise RuntimeError("pin_memory=True requires a CUDA or other accelerator backend; no "
                           "pinned memory allocator is available on this system.")
    shape = _sizes(data)
    kind = _infer_kind(data)
    _check_ragged(data, shape)
    if dtype is not None:
        dt = to_np_dtype(dtype)
    elif isinstance(data, np.ndarray):
        dt = data.dtype if data.dtype in (np.float32, np.float64, np.int32, np.int64,
                                          np.bool_) else None
        if dt is None:
            raise TypeError(f"can't convert np.ndarray of type {data.dtype}. The only "
                            "supported types are: float64, float32, int64, int32, and bool.")
    elif isinstance(data, Tensor):
        dt = data._n.val.dtype
    else:
        dt = {"b": np.bool_, "i": np.int64, "u": np.int64, "f": np.float32}[kind]
    arr = np.array(_unwrap(data), dtype=dt)
    if requires_grad and arr.dtype.kind != "f":
        raise RuntimeError("Only Tensors of floating point and complex dtype can require "
                           "gradients")
    return Tensor._from_array(arr, requires_grad=requires_grad)


def as_tensor(data, dtype=None, device=None):
    _check_device(device, "as_tensor", (data,))
    if isinstance(data, Tensor) and dtype is None:
        return data
    return tensor(data, dtype=dtype)


def from_numpy(arr):
    return Tensor._from_array(arr)


def _size(size, fn="zeros", dt=None):
    """The sizes of a factory call (ints, or one tuple or list of them) as a tuple, checked as
    PyTorch checks them: an int each, none negative, and with `dt` (the tensor's dtype) a
    storage of at most 2**63 - 1 bytes (PyTorch's RuntimeError before it allocates; NumPy's
    would be a ValueError, "array is too big")."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    out = []
    for k, d in enumerate(size):
        if isinstance(d, Tensor):
            d = d.item()
        if not isinstance(d, numbers.Integral) or isinstance(d, bool):
            raise TypeError(f"{fn}(): argument 'size' failed to unpack the object at pos {k + 1} "
                            f"with error \"type must be tuple of ints,but got "
                            f"{type(d).__name__}\"")
        if not -2 ** 63 <= d < 2 ** 63:
            raise TypeError(f"{fn}(): argument 'size' failed to unpack the object at pos {k + 1} "
                            f"with error \"Overflow when unpacking long long\"")
        out.append(int(d))
    if any(d < 0 for d in out):
        bad = next(d for d in out if d < 0)
        raise RuntimeError(f"Trying to create tensor with negative dimension {bad}: {out}")
    if dt is not None:
        _storage(out, dt)
    return tuple(out)


def _storage(shape, dt):
    n = np.dtype(dt).itemsize
    for d in shape:
        n *= d
    if n > 2 ** 63 - 1:
        raise RuntimeError(f"Storage size calculation overflowed with sizes={list(shape)}")
    return shape


def _allocates(f):
    """A factory whose allocation NumPy cannot make (MemoryError) raises PyTorch's RuntimeError
    (its CPU allocator's), with NumPy's words for the size."""
    import functools

    @functools.wraps(f)
    def factory(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except MemoryError as e:
            raise RuntimeError(f"DefaultCPUAllocator: can't allocate memory: {e}") from None
    return factory


def _make(arr, requires_grad):
    if requires_grad and arr.dtype.kind != "f":
        raise RuntimeError("Only Tensors of floating point and complex dtype can require "
                           "gradients")
    return Tensor._from_array(arr, requires_grad=requires_grad)


def _dt(dtype, default=np.float32):
    return to_np_dtype(dtype) if dtype is not None else np.dtype(default)


@_allocates
def zeros(*size, dtype=None, requires_grad=False, device=None):
    _check_device(device, "zeros", size)
    dt = _dt(dtype)
    return _make(np.zeros(_size(size, "zeros", dt), dt), requires_grad)


@_allocates
def ones(*size, dtype=None, requires_grad=False, device=None):
    _check_device(device, "ones", size)
    dt = _dt(dtype)
    return _make(np.ones(_size(size, "ones", dt), dt), requires_grad)


@_allocates
@quiet_fp  # a value beyond the dtype's range is inf, silently as in PyTorch
def full(size, fill_value, dtype=None, requires_grad=False, device=None):
    _check_device(device, "full", (size, fill_value))
    if tensor_ops.traced_number(fill_value):  # jit's traced Python number: its value
        dt = _dt(dtype, {"f": np.float32, "i": np.int64}.get(fill_value.dtype.kind, np.bool_))
        out = ops.broadcast_to(ops.convert(fill_value._n, dt), _size((size,), "full", dt))
        if requires_grad and dt.kind != "f":
            _make(np.empty(0, dt), True)  # (PyTorch's error)
        return Tensor._wrap(out)
    default = np.float32 if isinstance(fill_value, float) else np.int64 if isinstance(
        fill_value, int) and not isinstance(fill_value, bool) else np.bool_
    dt = _dt(dtype, default)
    return _make(np.full(_size((size,), "full", dt), fill_value, dt), requires_grad)


def empty(*size, dtype=None, requires_grad=False, device=None):
    _check_device(device, "empty", size)
    return zeros(*size, dtype=dtype, requires_grad=requires_grad)


def zeros_like(t, dtype=None, requires_grad=False, device=None):
    _check_device(device, "zeros_like", (t,))
    return _make(np.zeros(t._n.val.shape, _dt(dtype, t._n.val.dtype)), requires_grad)


def ones_like(t, dtype=None, requires_grad=False, device=None):
    _check_device(device, "ones_like", (t,))
    return _make(np.ones(t._n.val.shape, _dt(dtype, t._n.val.dtype)), requires_grad)


@quiet_fp  # a value beyond the dtype's range is inf, silently as in PyTorch
def full_like(t, fill_value, dtype=None, requires_grad=False, device=None):
    _check_device(device, "full_like", (t, fill_value))
    return _make(np.full(t._n.val.shape, fill_value, _dt(dtype, t._n.val.dtype)), requires_grad)


# PyTorch's device types (a device string names one of these before an optional ":index")
_DEVICE_TYPES = ("cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve",
                 "fpga", "maia", "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia",
                 "privateuseone")


def _check_device(device, fn, size):
    """adjit's tensors live on the CPU: device=None, 'cpu', 'cpu:N' or a device object of
    type 'cpu' is accepted; any other is refused with the error PyTorch raises on a CPU-only
    build (an unknown name, a CUDA or accelerator index), or, for a type PyTorch has but adjit
    has not ('meta', 'mps', ...), a RuntimeError that says so."""
    if device is None:
        return
    if isinstance(device, bool) or not isinstance(device, (str, int)) and \
            not isinstance(getattr(device, "type", None), str):
        raise TypeError(f"{fn}() received an invalid combination of arguments - got "
                        f"({', '.join(type(d).__name__ for d in size)}, device="
                        f"{type(device).__name__}), but expected a str, an int or a device")
    if isinstance(device, int):
        raise RuntimeError("Cannot access accelerator device when none is available.")
    kind = device if isinstance(device, str) else device.type
    kind = kind.split(":", 1)[0]
    if kind == "cpu":
        return
    if kind not in _DEVICE_TYPES:
        raise RuntimeError(f"Expected one of {', '.join(_DEVICE_TYPES)} device type at start "
                           f"of device string: {device}")
    if kind == "cuda":
        raise AssertionError("adjit is not compiled with CUDA: its tensors live on "
                             "the CPU (device='cpu')")
    raise RuntimeError(f"{fn}(): device {str(device)!r} is not supported: adjit's tensors live "
                       "on the CPU (device='cpu')")


class Generator(np.random.Generator):
    """torch.Generator for adjit's random factories (randn, rand: `generator=`): a NumPy
    Generator (PCG64), so its draws are NumPy's, not PyTorch's bits. manual_seed(seed) resets
    it (and returns it), initial_seed() gives that seed, seed() reseeds it from the OS."""

    def __init__(self, device="cpu"):
        _check_device(device, "Generator", ())
        super().__init__(np.random.PCG64())
        self.device = "cpu"
        self.seed()

    def manual_seed(self, seed):
        self._seed = int(seed)
        self.bit_generator.state = np.random.PCG64(self._seed).state
        return self

    def initial_seed(self):
        return self._seed

    def seed(self):
        self.manual_seed(int(np.random.SeedSequence().entropy) % 2**63)
        return self._seed

    def get_state(self):
        """The generator's state as a new 1-D Tensor of byte values (torch.Generator.get_state
        gives a uint8 one; adjit has no uint8 dtype: int64 here). Not torch's bytes: adjit's
        own record of the PCG64 state and the initial seed, with a tag and a checksum;
        set_state of it restores this generator (or another adjit.Generator) exactly."""
        st = self.bit_generator.state
        inner = st["state"]
        body = b"".join((_STATE_TAG, int(inner["state"]).to_bytes(16, "little"),
                         int(inner["inc"]).to_bytes(16, "little"), bytes([st["has_uint32"]]),
                         int(st["uinteger"]).to_bytes(4, "little"),
                         int(self._seed).to_bytes(16, "little", signed=True)))
        data = body + zlib.crc32(body).to_bytes(4, "little")
        return tensor(np.frombuffer(data, np.uint8).astype(np.int64))

    def set_state(self, new_state):
        """Restore a state get_state gave (of any adjit.Generator); returns this generator.
        Anything else raises, with torch.Generator.set_state's exception types: TypeError for
        a non-Tensor or a tensor of another dtype than get_state's, RuntimeError for a state of
        another size or a garbled one (values outside 0..255, tag, checksum)."""
        if not isinstance(new_state, Tensor):
            raise TypeError(f"expected a torch.ByteTensor, but got {type(new_state).__name__}")
        raw = np.asarray(new_state.detach().numpy())
        if raw.dtype != np.int64:
            raise TypeError(f"RNG state must be an int64 tensor of bytes (what "
                            f"adjit.Generator.get_state gives), not {raw.dtype}")
        raw = raw.reshape(-1)
        if raw.size != _STATE_SIZE:
            raise RuntimeError(f"Expected an adjit.Generator state of size {_STATE_SIZE} but "
                               f"found the input RNG state size to be {raw.size}")
        ok = bool(((raw >= 0) & (raw < 256)).all())
        data = raw.astype(np.uint8).tobytes()
        body, crc = data[:-4], int.from_bytes(data[-4:], "little")
        if not ok or not body.startswith(_STATE_TAG) or zlib.crc32(body) != crc:
            raise RuntimeError("Invalid adjit.Generator state: not one get_state() gave "
                               "(adjit's states are its own, not torch.Generator's bytes)")
        at = len(_STATE_TAG)
        state, inc = (int.from_bytes(body[at + i:at + i + 16], "little") for i in (0, 16))
        self.bit_generator.state = {
            "bit_generator": "PCG64", "state": {"state": state, "inc": inc},
            "has_uint32": body[at + 32], "uinteger": int.from_bytes(body[at + 33:at + 37],
                                                                    "little")}
        self._seed = int.from_bytes(body[at + 37:at + 53], "little", signed=True)
        return self

    # copy.copy, copy.deepcopy and pickle give a Generator of its own with this one's state and
    # initial seed, as torch.Generator's do (NumPy's would give a numpy Generator, and
    # copy.copy one sharing this bit generator)
    def __reduce__(self):
        return _rebuild_generator, (self.bit_generator.state, self._seed)

    def __copy__(self):
        return _rebuild_generator(self.bit_generator.state, self._seed)

    def __deepcopy__(self, memo):
        return _rebuild_generator(self.bit_generator.state, self._seed)


_STATE_TAG = b"adjit.Generator PCG64 v1\0"
_STATE_SIZE = len(_STATE_TAG) + 16 + 16 + 1 + 4 + 16 + 4


def _rebuild_generator(state, seed):
    g = Generator.__new__(Generator)
    np.random.Generator.__init__(g, np.random.PCG64())
    g.device = "cpu"
    g._seed = seed
    g.bit_generator.state = state
    return g


def _generator(generator, fn, size):
    """The NumPy generator to draw from: adjit's (manual_seed) or the one given (an
    adjit.Generator, or any numpy.random.Generator)."""
    if generator is None:
        return _rng
    if isinstance(generator, np.random.Generator):
        return generator
    raise TypeError(f"{fn}() received an invalid combination of arguments - got "
                    f"({', '.join(type(d).__name__ for d in size)}, generator="
                    f"{type(generator).__name__}), but expected an adjit.Generator")


_KERNEL_DTYPE = {"int64": "Long", "int32": "Int", "bool": "Bool"}


def _float_dtype(dt, kernel):
    """PyTorch draws normal and uniform numbers in a floating dtype only (its error)."""
    if dt.kind != "f":
        raise NotImplementedError(f'"{kernel}" not implemented for \'{_KERNEL_DTYPE[dt.name]}\'')
    return dt


@_allocates
def randn(*size, dtype=None, requires_grad=False, generator=None, device=None):
    _check_device(device, "randn", size)
    dt = _float_dtype(_dt(dtype), "normal_kernel_cpu")
    rng = _generator(generator, "randn", size)
    return _make(rng.standard_normal(_size(size, "randn", dt)).astype(dt), requires_grad)


@_allocates
def rand(*size, dtype=None, requires_grad=False, generator=None, device=None):
    _check_device(device, "rand", size)
    dt = _float_dtype(_dt(dtype), "check_uniform_bounds")
    rng = _generator(generator, "rand", size)
    return _make(rng.random(_size(size, "rand", dt)).astype(dt), requires_grad)


@_allocates
def randint(low, high=None, size=(), dtype=None, requires_grad=False, device=None):
    _check_device(device, "randint", (low, high, size))
    if high is None:
        low, high = 0, low
    dt = _dt(dtype, np.int64)
    return _make(_rng.integers(low, high, _size((size,), "randint", dt)).astype(dt),
                 requires_grad)


def randn_like(t, dtype=None, requires_grad=False, device=None, generator=None):
    _check_device(device, "randn_like", (t,))
    return randn(*t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad,
                 generator=generator)


def rand_like(t, dtype=None, requires_grad=False, device=None, generator=None):
    _check_device(device, "rand_like", (t,))
    return rand(*t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad,
                generator=generator)


def empty_like(t, dtype=None, requires_grad=False, device=None):
    """torch.empty_like: uninitialised in PyTorch; adjit's are zeros (as `empty`)."""
    _check_device(device, "empty_like", (t,))
    return _make(np.zeros(t._n.val.shape, _dt(dtype, t._n.val.dtype)), requires_grad)


@_allocates
@quiet_fp  # a value beyond the dtype's range is inf, silently as in PyTorch
def arange(start, end=None, step=1, dtype=None, requires_grad=False, device=None):
    _check_device(device, "arange", (start,) if end is None else (start, end))
    if end is None:
        start, end = 0, start
    isfloat = any(isinstance(v, float) for v in (start, end, step))
    dt = _dt(dtype, np.float32 if isfloat else np.int64)
    if step and all(isinstance(v, numbers.Real) for v in (start, end, step)):
        _storage((max(math.ceil((end - start) / step), 0),), dt)
    arr = np.arange(start, end, step, dtype=dt)
    return _make(arr, requires_grad)


@_allocates
@quiet_fp  # a value beyond the dtype's range is inf, silently as in PyTorch
def linspace(start, end, steps, dtype=None, requires_grad=False, device=None):
    _check_device(device, "linspace", (start, end, steps))
    return _make(np.linspace(start, end, int(steps)).astype(_dt(dtype)), requires_grad)


@_allocates
def eye(n, m=None, dtype=None, requires_grad=False, device=None):
    _check_device(device, "eye", (n,) if m is None else (n, m))
    dt = _dt(dtype)
    _storage((n, n if m is None else m), dt)
    return _make(np.eye(n, m, dtype=dt), requires_grad)


def is_tensor(x):
    return isinstance(x, Tensor)


def numel(x):
    return x.numel()


def cat(tensors, dim=0):
    tensors = [t if isinstance(t, Tensor) else tensor(t) for t in tensors]
    dt = tensor_ops.result_dtype(*tensors)
    for i, t in enumerate(tensors):
        if t._n.type.ndim == 0:
            raise RuntimeError(f"zero-dimensional tensor (at position {i}) cannot be "
                               "concatenated")
    nd = tensors[0]._n.type.ndim
    axis = tensor_ops.wrap_dim(dim, nd)
    nodes = [ops.convert(t._n, dt) for t in tensors]
    for t in nodes[1:]:
        s0, s = ops.shape(nodes[0]), ops.shape(t)
        if len(s) != len(s0):
            raise shape_error(f"Tensors must have same number of dimensions: got {len(s0)} "
                               f"and {len(s)}")
        for i, (a, b) in enumerate(zip(s0, s)):
            if i != axis and a != b:
                raise shape_error(f"Sizes of tensors must match except in dimension {axis}. "
                                   f"Expected size {a} but got size {b} for tensor number "
                                   f"{nodes.index(t)} in the list.")
    out = ops.concatenate(*nodes, axis=axis)
    return Tensor._wrap(tag(out, "CatBackward0", [t._n for t in tensors]))


concat = cat


def stack(tensors, dim=0):
    tensors = [t if isinstance(t, Tensor) else tensor(t) for t in tensors]
    shp = tensors[0]._n.type.shape
    for i, t in enumerate(tensors):
        if t._n.type.shape != shp:
            raise shape_error(f"stack expects each tensor to be equal size, but got "
                               f"{list(shp)} at entry 0 and {list(t._n.type.shape)} at entry {i}")
    d = tensor_ops.wrap_dim(dim, len(shp) + 1)
    new = shp[:d] + (1,) + shp[d:]
    dt = tensor_ops.result_dtype(*tensors)
    nodes = [ops.reshape(ops.convert(t._n, dt), new) for t in tensors]
    out = ops.concatenate(*nodes, axis=d)
    return Tensor._wrap(tag(out, "StackBackward0", [t._n for t in tensors]))


def where(cond, x=None, y=None):
    c = cond._n.val if isinstance(cond, Tensor) else np.asarray(cond)
    if x is None:
        return tuple(Tensor._from_array(i.astype(np.int64)) for i in np.nonzero(c))
    x, y = tensor_ops.as_tensor_like(x), tensor_ops.as_tensor_like(y)
    dt = tensor_ops.result_dtype(x, y)
    shp = tensor_ops.broadcast_shapes(c.shape, tensor_ops.broadcast_shapes(
        x.shape if isinstance(x, Tensor) else (), y.shape if isinstance(y, Tensor) else ()))

    def prep(v):
        if isinstance(v, Tensor) or tensor_ops.traced_number(v):  # (jit's traced number)
            return ops.broadcast_to(ops.convert(v._n, dt), shp)
        return ops.full(shp, v, dt) if not STATE.grad_enabled or True else None
    cn = ops.broadcast_to(cond._n if isinstance(cond, Tensor) else c, shp)
    out = ops.select(cn, prep(x), prep(y))
    return Tensor._wrap(tag(out, "WhereBackward0", [None if not isinstance(v, Tensor) else v._n
                                                    for v in (x, y)]))


def _fn(method):
    def f(x, *args, **kwargs):
        if not isinstance(x, Tensor):
            x = tensor(x)
        return getattr(x, method)(*args, **kwargs)
    f.__name__ = method
    return f


def _tensor_fn(method):
    """A function of two tensors (PyTorch accepts no number there: maximum, minimum)."""
    def f(input, other):
        for pos, (arg, v) in enumerate((("input", input), ("other", other))):
            if not isinstance(v, Tensor):
                raise TypeError(f"{method}(): argument '{arg}' (position {pos + 1}) must be "
                                f"Tensor, not {type(v).__name__}")
        return getattr(input, method)(other)
    f.__name__ = method
    return f


FUNCTIONS = {name: _fn(name) for name in (
    "exp", "log", "sin", "cos", "tan", "tanh", "sqrt", "rsqrt", "log1p", "expm1", "abs",
    "sigmoid", "relu", "sign", "neg", "sum", "mean", "max", "min", "argmax", "argmin", "norm",
    "var", "std", "prod", "softmax", "log_softmax", "matmul", "mm", "dot", "reshape",
    "transpose", "permute", "squeeze", "unsqueeze", "flatten", "t", "clamp", "clip", "cumsum",
    "clamp_", "clip_", "logsumexp", "all", "any",
    "pow", "add", "sub", "mul", "div", "clone", "detach", "eq", "ne", "lt", "le", "gt", "ge",
    "logical_not", "bitwise_and", "bitwise_or", "bitwise_xor", "unbind", "flatten", "expand",
    "view_as", "numel")}
# and every torch name of a unary primitive record (exp, sigmoid, floor, ...)
FUNCTIONS.update((name, _fn(name)) for p in REGISTRY.values()
                 if p.kind == "unary" and p.nout == 1 for name in p.torch)
FUNCTIONS["maximum"] = _tensor_fn("maximum")
FUNCTIONS["minimum"] = _tensor_fn("minimum")
FUNCTIONS.update(einsum_torch.FUNCTIONS)
FUNCTIONS["prod"] = torch_composites.prod_function
FUNCTIONS["amax"] = tensor_ops.amax_call(True, True)
FUNCTIONS["amin"] = tensor_ops.amax_call(False, True)
FUNCTIONS["relu"] = torch_composites.relu  # calls bind itself (one frame less to look through)
