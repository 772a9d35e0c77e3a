"""Batched float64 real FFTs of frame buffers callable from numba, for the CPU spectral kernels.

The spectral metrics transform a few frames at a time so each chunk is reduced while it is in
cache. Through ``torch.fft.rfft`` every such call costs ~15-20 us of Python, dispatch, output
allocation and plan set-up on top of the transform, a quarter of the mel distance's time. Where
torch's CPU library carries oneMKL (the x86 wheels) this module hands out MKL's documented DFTI C
function from that same library, with committed descriptors (one per batch size and thread,
made once, one thread per transform), so a numba kernel can window, transform and reduce chunk
after chunk without returning to Python. Where it is missing, callers transform with torch.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

# oneMKL DFTI configuration parameters and values (mkl_dfti.h)
_DFTI_NUMBER_OF_TRANSFORMS = 7
_DFTI_CONJUGATE_EVEN_STORAGE = 10
_DFTI_PLACEMENT = 11
_DFTI_INPUT_DISTANCE = 14
_DFTI_OUTPUT_DISTANCE = 15
_DFTI_THREAD_LIMIT = 27
_DFTI_REAL = 33
_DFTI_COMPLEX_COMPLEX = 39
_DFTI_NOT_INPLACE = 44


@functools.lru_cache(maxsize=1)
def _mkl() -> ctypes.CDLL | None:
    """torch's CPU library when it exports MKL's DFTI functions, else None."""
    if not torch.backends.mkl.is_available():
        return None
    for path in sorted((Path(torch.__file__).parent / "lib").glob("*torch_cpu.*")):
        try:
            lib = ctypes.CDLL(str(path))
            lib.DftiCreateDescriptor_d_1d.argtypes = [
                ctypes.POINTER(ctypes.c_void_p),
                ctypes.c_int,
                ctypes.c_long,
            ]
            lib.DftiCreateDescriptor_d_1d.restype = ctypes.c_long
            lib.DftiSetValue.restype = ctypes.c_long
            lib.DftiCommitDescriptor.argtypes = [ctypes.c_void_p]
            lib.DftiCommitDescriptor.restype = ctypes.c_long
            lib.DftiComputeForward.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
            lib.DftiComputeForward.restype = ctypes.c_long
        except (OSError, AttributeError):
            continue
        return lib
    return None


@functools.lru_cache(maxsize=1)
def mkl_forward() -> Any | None:
    """``DftiComputeForward(descriptor, in, out) -> status`` as a numba first-class function, or
    None where torch has no MKL (then transform with ``torch.fft.rfft``).

    Numba calls it through the address it reads at run time, so the kernels that take it stay
    cacheable; a ctypes function would be compiled in as a constant address and recompiled in
    every process.
    """
    lib = _mkl()
    if lib is None:
        return None
    import numba.experimental.function_type  # noqa: F401  (registers the type of such functions)
    from numba.core import types

    class DftiComputeForward(types.WrapperAddressProtocol):
        def __init__(self, address: int) -> None:
            self._address = address

        def __wrapper_address__(self) -> int:
            return self._address

        def signature(self) -> Any:
            return types.int64(types.int64, types.uintp, types.uintp)

    return DftiComputeForward(ctypes.cast(lib.DftiComputeForward, ctypes.c_void_p).value)


_tables = threading.local()  # per thread: {(n, transforms per frame, max frames): descriptor table}


def descriptor_table(n: int, per_frame: int, max_frames: int) -> np.ndarray:
    """This thread's committed descriptors for 1, 2, 4, ... frames of ``per_frame`` contiguous
    length-n real FFTs (entry i: 2**i frames), up to max_frames; complex (CCE) output of n//2+1.

    Any frame count is a sum of these, so a handful of descriptors serves every chunk length.
    """
    lib = _mkl()
    if lib is None:
        raise RuntimeError("torch here has no MKL; transform with torch.fft.rfft")
    cache = _tables.__dict__.setdefault("by_shape", {})
    key = (n, per_frame, max_frames)
    if key not in cache:
        handles = []
        for i in range(max_frames.bit_length()):
            handle = ctypes.c_void_p()
            status = lib.DftiCreateDescriptor_d_1d(ctypes.byref(handle), _DFTI_REAL, n)
            for param, value in (
                (_DFTI_PLACEMENT, _DFTI_NOT_INPLACE),
                (_DFTI_CONJUGATE_EVEN_STORAGE, _DFTI_COMPLEX_COMPLEX),
                (_DFTI_NUMBER_OF_TRANSFORMS, per_frame << i),
                (_DFTI_INPUT_DISTANCE, n),
                (_DFTI_OUTPUT_DISTANCE, n // 2 + 1),
                (_DFTI_THREAD_LIMIT, 1),
            ):
                status = status or lib.DftiSetValue(handle, ctypes.c_int(param), ctypes.c_long(value))
            status = status or lib.DftiCommitDescriptor(handle)
            if status:
                raise RuntimeError(
                    f"MKL DFTI descriptor for {per_frame << i} x {n}-point real FFTs failed (status {status})"
                )
            handles.append(handle.value)
        cache[key] = np.array(handles, dtype=np.int64)
    return cache[key]
