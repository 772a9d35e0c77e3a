"""The numba kernels of the CPU STOI/ESTOI path (see :mod:`bench.metrics.fast_stoi`): the per-frame
work that numpy would do in several passes, one pass each, same arithmetic.

Module-level functions, like :mod:`bench.metrics.spectral_kernels`, so numba's on-disk cache keys
them by module and code alone and every scoring worker after the first loads them compiled.
Imported on first use, so importing the metrics does not import numba.
"""

from __future__ import annotations

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True, boundscheck=False)


@_jit
def silence_free_frames(blocks, keep, w_lo, w_hi, frames):  # noqa: ANN001, ANN201
    # overlap-add of the kept windowed frames (half frames j: kept frame j's first half plus
    # kept frame j-1's second half), re-framed, windowed and zero-padded to NFFT
    k = keep.size
    h = w_lo.size
    for s in range(2):
        for f in range(k - 1):
            a0 = blocks[s, keep[f]]
            a1 = blocks[s, keep[f + 1]]
            out = frames[s, f]
            if f == 0:
                for i in range(h):
                    out[i] = (a0[i] * w_lo[i]) * w_lo[i]
            else:
                b0 = blocks[s, keep[f - 1] + 1]
                for i in range(h):
                    out[i] = (a0[i] * w_lo[i] + b0[i] * w_hi[i]) * w_lo[i]
            b1 = blocks[s, keep[f] + 1]
            for i in range(h):
                out[h + i] = (a1[i] * w_lo[i] + b1[i] * w_hi[i]) * w_hi[i]
            for i in range(2 * h, out.size):
                out[i] = 0.0


@_jit
def band_magnitudes(ri, edges, out):  # noqa: ANN001, ANN201
    # ri [2, F, 2*bins] interleaved (re, im); out [2, bands, F] = sqrt(band power)
    for s in range(2):
        for f in range(ri.shape[1]):
            row = ri[s, f]
            for b in range(edges.size - 1):
                acc = 0.0
                for k in range(2 * edges[b], 2 * edges[b + 1]):
                    acc += row[k] * row[k]
                out[s, b, f] = np.sqrt(acc)


@numba.njit(cache=True, nogil=True, fastmath=True, boundscheck=False)
def stoi_segments(x, y, n, clip, eps):  # noqa: ANN001, ANN201
    # Σ over bands and segments of the correlation of the clean band envelope with the
    # normalised, clipped processed one (pystoi's STOI), one segment in registers at a time
    bands, f = x.shape
    yp = np.empty(n)
    total = 0.0
    for b in range(bands):
        xb = x[b]
        yb = y[b]
        for s in range(f - n + 1):
            sxx = 0.0
            syy = 0.0
            for j in range(n):
                sxx += xb[s + j] * xb[s + j]
                syy += yb[s + j] * yb[s + j]
            ratio = np.sqrt(sxx) / (np.sqrt(syy) + eps)
            syp = 0.0
            sx = 0.0
            for j in range(n):
                yp[j] = min(yb[s + j] * ratio, xb[s + j] * clip)
                syp += yp[j]
                sx += xb[s + j]
            myp = syp / n
            mx = sx / n
            num = 0.0
            dyy = 0.0
            dxx = 0.0
            for j in range(n):
                a = yp[j] - myp
                c = xb[s + j] - mx
                num += a * c
                dyy += a * a
                dxx += c * c
            total += num / (np.sqrt(dyy) + eps) / (np.sqrt(dxx) + eps)
    return total
