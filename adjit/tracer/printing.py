"""Tensor repr formatting that reproduces PyTorch 2.13's ``repr(tensor)`` with NumPy only.

The layout rules (precision 4, summarization past 1000 elements, 80-column wrapping, the
``int_mode``/``sci_mode`` choice) follow ``torch/_tensor_str.py`` so that notebooks written for
torch print identically under adjit.  Only strided, real (non-complex) tensors on the CPU are
covered: that is all adjit has.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

PRECISION = 4
THRESHOLD = 1000
EDGEITEMS = 3
LINEWIDTH = 80

_TORCH_DTYPE_NAMES = {
    np.dtype(np.float16): "torch.float16",
    np.dtype(np.float32): "torch.float32",
    np.dtype(np.float64): "torch.float64",
    np.dtype(np.int8): "torch.int8",
    np.dtype(np.int16): "torch.int16",
    np.dtype(np.int32): "torch.int32",
    np.dtype(np.int64): "torch.int64",
    np.dtype(np.uint8): "torch.uint8",
    np.dtype(np.uint16): "torch.uint16",
    np.dtype(np.uint32): "torch.uint32",
    np.dtype(np.uint64): "torch.uint64",
    np.dtype(np.bool_): "torch.bool",
    np.dtype(np.complex64): "torch.complex64",
    np.dtype(np.complex128): "torch.complex128",
}


def torch_dtype_name(dtype) -> str:
    """The ``torch.<name>`` spelling of a NumPy dtype (what ``str(tensor.dtype)`` shows)."""
    return _TORCH_DTYPE_NAMES[np.dtype(dtype)]


def _is_floating(arr: np.ndarray) -> bool:
    return np.issubdtype(arr.dtype, np.floating)


def _summarized(arr: np.ndarray) -> np.ndarray:
    """Only the elements that will be printed, so that widths ignore the elided middle.

    Mirrors torch's ``get_summarized_data``: keep ``EDGEITEMS`` from each end of every axis
    that is longer than twice that.
    """
    for axis, size in enumerate(arr.shape):
        if size > 2 * EDGEITEMS:
            keep = np.r_[0:EDGEITEMS, size - EDGEITEMS:size]
            arr = np.take(arr, keep, axis=axis)
    return arr


class _Formatter:
    """Chooses one width and one notation for every element of a tensor (torch's _Formatter)."""

    def __init__(self, arr: np.ndarray):
        self.floating = _is_floating(arr)
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1
        flat = arr.reshape(-1)

        if not self.floating:
            for value in flat.tolist():
                self.max_width = max(self.max_width, len(str(value)))
            return

        finite = flat[np.isfinite(flat) & (flat != 0)]
        if finite.size == 0:
            # Nothing but zeros/nan/inf: keep the defaults (int mode, width 1).
            return

        # torch compares in double precision after taking |x| in the tensor's own dtype.
        abs_vals = np.abs(finite).astype(np.float64)
        lo, hi = abs_vals.min(), abs_vals.max()
        with np.errstate(over="ignore"):
            ratio = hi / lo  # may overflow to inf for extreme float64s, as in torch
        # Python floats of the values exactly as the tensor's dtype holds them.
        values = finite.tolist()

        self.int_mode = bool(np.all(finite == np.ceil(finite)))
        self.sci_mode = bool(ratio > 1000.0 or hi > 1.0e8 or lo < 1.0e-4)

        if self.sci_mode:
            widths = (len(f"{v:.{PRECISION}e}") for v in values)
        elif self.int_mode:
            # The trailing "." marking a float costs one column.
            widths = (len(f"{v:.0f}") + 1 for v in values)
        else:
            widths = (len(f"{v:.{PRECISION}f}") for v in values)
        self.max_width = max(self.max_width, max(widths))

    def format(self, value) -> str:
        if self.floating:
            if self.sci_mode:
                text = f"{value:{self.max_width}.{PRECISION}e}"
            elif self.int_mode:
                text = f"{value:.0f}"
                if not (math.isinf(value) or math.isnan(value)):
                    text += "."
            else:
                text = f"{value:.{PRECISION}f}"
        else:
            text = str(value)
        # Non-finite values were not measured, so they may overflow the width: no padding then.
        return " " * (self.max_width - len(text)) + text


def _vector_str(arr: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    # Each element costs its width plus ", ".
    per_line = max(1, math.floor((LINEWIDTH - indent) / (fmt.max_width + 2)))
    if summarize and arr.shape[0] > 2 * EDGEITEMS:
        items = (
            [fmt.format(v) for v in arr[:EDGEITEMS].tolist()]
            + [" ..."]
            + [fmt.format(v) for v in arr[-EDGEITEMS:].tolist()]
        )
    else:
        items = [fmt.format(v) for v in arr.tolist()]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _nested_str(arr: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    if arr.ndim == 0:
        return fmt.format(arr.item())
    if arr.ndim == 1:
        return _vector_str(arr, indent, summarize, fmt)
    size = arr.shape[0]
    if summarize and size > 2 * EDGEITEMS:
        head = [_nested_str(arr[i], indent + 1, summarize, fmt) for i in range(EDGEITEMS)]
        tail = [_nested_str(arr[i], indent + 1, summarize, fmt)
                for i in range(size - EDGEITEMS, size)]
        slices = head + ["..."] + tail
    else:
        slices = [_nested_str(arr[i], indent + 1, summarize, fmt) for i in range(size)]
    # Blocks of an n-d tensor are separated by n-2 blank lines, as in NumPy.
    separator = "," + "\n" * (arr.ndim - 1) + " " * (indent + 1)
    return "[" + separator.join(slices) + "]"


def _body_str(arr: np.ndarray, indent: int) -> str:
    summarize = arr.size > THRESHOLD
    fmt = _Formatter(_summarized(arr) if summarize else arr)
    return _nested_str(arr, indent, summarize, fmt)


def _add_suffixes(text: str, suffixes: Sequence[str], indent: int) -> str:
    parts = [text]
    # torch's own arithmetic (it counts two columns too many when there is no newline);
    # copied as is because it decides where suffixes wrap.
    last_line_len = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        if last_line_len + len(suffix) + 2 > LINEWIDTH:
            parts.append(",\n" + " " * indent + suffix)
            last_line_len = indent + len(suffix)
        else:
            parts.append(", " + suffix)
            last_line_len += len(suffix) + 2
    parts.append(")")
    return "".join(parts)


def format_tensor(
    arr: np.ndarray,
    *,
    suffixes: Sequence[str] = (),
    dtype_name: str | None = None,
    prefix: str = "tensor(",
) -> str:
    """``repr`` of a tensor holding ``arr``, as PyTorch 2.13 prints it.

    ``suffixes`` are appended after the data (e.g. ``"grad_fn=<AddBackward0>"``,
    ``"requires_grad=True"``).  ``dtype_name`` (e.g. ``"torch.float64"``) is shown as
    ``dtype=...``; the caller passes it only when the dtype is not a default one.  Empty arrays
    are the exception: torch always names a non-float32 dtype there, because no element shows
    it, so this function adds it itself when ``dtype_name`` is None.
    """
    arr = np.asarray(arr)
    if np.iscomplexobj(arr):
        raise NotImplementedError("complex tensors are not supported by adjit printing")
    indent = len(prefix)
    head: list[str] = []
    if arr.size == 0:
        body = "[]"
        if arr.ndim != 1:
            head.append("size=" + str(tuple(int(n) for n in arr.shape)))
        if dtype_name is None and arr.dtype != np.float32:
            dtype_name = torch_dtype_name(arr.dtype)
    else:
        body = _body_str(arr, indent)
    if dtype_name is not None:
        head.append("dtype=" + dtype_name)
    return _add_suffixes(prefix + body, [*head, *suffixes], indent)
