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
            lib.DftiCreateDescriptor_d_1d.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_long]
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


def mkl_forward() -> ctypes._CFuncPtr | None:
    """``DftiComputeForward(descriptor, in, out) -> status`` as a ctypes function numba can call, or
    None where torch has no MKL (then transform with ``torch.fft.rfft``)."""
    lib = _mkl()
    return None if lib is None else lib.DftiComputeForward


def aligned_empty(shape: tuple[int, ...], dtype: type = np.float64) -> np.ndarray:
    """An uninitialised C-contiguous array starting on a 64-byte boundary.

    MKL takes different code paths for differently aligned buffers, which changes results in
    the last bit: aligned buffers keep every call (any thread, any allocator state) identical.
    """
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.empty(nbytes + 64, dtype=np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start:start + nbytes].view(dtype).reshape(shape)


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
                raise RuntimeError(f"MKL DFTI descriptor for {per_frame << i} x {n}-point real FFTs failed "
                                   f"(status {status})")
            handles.append(handle.value)
        cache[key] = np.array(handles, dtype=np.int64)
    return cache[key]
