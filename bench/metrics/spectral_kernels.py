"""The numba kernels of the CPU spectral distances (see the CPU kernels section of
:mod:`bench.metrics.spectral` for the design).

Module-level functions so numba's cache keys them by code alone: kernels defined inside a
function carry the other kernels they call as closure cells, whose fingerprint changes in every
process, and were compiled again each time (seconds per worker).
"""

from __future__ import annotations

import math

import numba
import numpy as np

LANES = 64  # running products per log-ratio sum
ROUNDS = 16  # factors per lane between renormalisations: 16 factors in [1e-15, 2**60] stay normal
_MANTISSA_BITS = np.int64(0xFFFFFFFFFFFFF)
_ONE_BITS = np.int64(0x3FF0000000000000)  # the exponent bits of 1.0

_jit = numba.njit(cache=True, nogil=True, fastmath=True, boundscheck=False, error_model="numpy")


# ----------------------------------------------------------------------------- sum |ln a - ln b|
# as lane products: products[0] of max(a, b), products[1] of min(a, b)


@_jit
def new_lanes():  # noqa: ANN202
    return np.ones((2, LANES)), np.zeros((2, LANES), dtype=np.int64)


@_jit
def renormalise(products, exponents):  # noqa: ANN001, ANN202
    # Move each lane's binary exponent into `exponents`, leaving a mantissa in [1, 2).
    bits = products.view(np.int64)
    for r in range(2):
        for j in range(LANES):
            exponents[r, j] += ((bits[r, j] >> 52) & 0x7FF) - 1023
            bits[r, j] = (bits[r, j] & _MANTISSA_BITS) | _ONE_BITS


@_jit
def log_ratio_sum(products, exponents):  # noqa: ANN001, ANN202
    total = 0.0
    for j in range(LANES):
        total += math.log(products[0, j]) - math.log(products[1, j])
        total += (exponents[0, j] - exponents[1, j]) * math.log(2.0)
    return total


# ----------------------------------------------------------------------------- frames and spectra


@_jit
def window_row(src, start, w, dst):  # noqa: ANN001, ANN202
    # dst = src[start : start+len(w)] * w, src reflect-padded on the fly (numpy 'reflect')
    n = w.size
    size = src.size
    if start >= 0 and start + n <= size:
        for j in range(n):
            dst[j] = src[start + j] * w[j]
    else:
        for j in range(n):
            i = abs(start + j)
            if i >= size:
                i = 2 * (size - 1) - i
            dst[j] = src[i] * w[j]


@_jit
def window_frames(deg, ref, f0, hop, w, frames):  # noqa: ANN001, ANN202
    # frames[f, s] = frame f0+f of signal s (deg, ref) as torch.stft(center=True) frames it:
    # reflect-padded by n_fft//2, the window w centred in n_fft with zeros either side
    n_fft = frames.shape[2]
    n = w.size
    off = (n_fft - n) // 2
    for f in range(frames.shape[0]):
        start = (f0 + f) * hop - n_fft // 2 + off
        for s in range(2):
            for j in range(off):
                frames[f, s, j] = 0.0
            for j in range(off + n, n_fft):
                frames[f, s, j] = 0.0
        window_row(deg, start, w, frames[f, 0, off : off + n])
        window_row(ref, start, w, frames[f, 1, off : off + n])


@_jit
def transform(fft, table, frames, spectra, count):  # noqa: ANN001, ANN202
    # spectra[:count] = rfft(frames[:count]) by MKL, as pieces of 2**i frames (descriptor table[i])
    start = 0
    while start < count:
        i = 0
        while (2 << i) <= count - start:
            i += 1
        if fft(table[i], frames[start:].ctypes.data, spectra[start:].ctypes.data) != 0:
            raise RuntimeError("MKL DFTI forward transform failed")
        start += 1 << i


# ----------------------------------------------------------------------------- STFT distance


@_jit
def stft_terms(ri, eps, with_lin, direct_logs, powers, sums, products, exponents):  # noqa: ANN001, ANN202
    # ri: [F, 2, 2*bins] interleaved (re, im) of (deg, ref). Adds Σ P_D, Σ P_R, Σ |D||R| and
    # Σ ||D|-|R|| (with_lin only) of the clamped powers to sums[:4], and |ln P_D - ln P_R| to
    # the lane products, or log by log to sums[4]. The sums run in loops without stores: a
    # loop that also stores is vectorised or not after a run-time aliasing check on addresses,
    # which would make the summation order, so the last bit, depend on memory layout.
    n = ri.shape[2] // 2
    p_d = powers[0]
    p_r = powers[1]
    s_d = 0.0
    s_r = 0.0
    cross = 0.0
    lin = 0.0
    logs = 0.0
    rounds = 0
    for f in range(ri.shape[0]):
        a = ri[f, 0]
        b = ri[f, 1]
        for k0 in range(0, n, LANES):
            hi = products[0]
            lo = products[1]
            for j in range(min(LANES, n - k0)):
                k = k0 + j
                pd = max(a[2 * k] * a[2 * k] + a[2 * k + 1] * a[2 * k + 1], eps)
                pr = max(b[2 * k] * b[2 * k] + b[2 * k + 1] * b[2 * k + 1], eps)
                p_d[k] = pd
                p_r[k] = pr
                if not direct_logs:
                    hi[j] *= max(pd, pr)
                    lo[j] *= min(pd, pr)
            rounds += 1
            if rounds == ROUNDS:
                renormalise(products, exponents)
                rounds = 0
        for k in range(n):
            s_d += p_d[k]
            s_r += p_r[k]
            if with_lin:
                md = np.sqrt(p_d[k])
                mr = np.sqrt(p_r[k])
                cross += md * mr
                lin += abs(md - mr)
            else:
                cross += np.sqrt(p_d[k] * p_r[k])
            if direct_logs:
                logs += abs(math.log(p_d[k]) - math.log(p_r[k]))
    renormalise(products, exponents)
    sums[0] += s_d
    sums[1] += s_r
    sums[2] += cross
    sums[3] += lin
    sums[4] += logs


@_jit
def stft_scan(deg, ref, hop, w, fft, table, frames, spectra, eps, with_lin, direct_logs, sums):  # noqa: ANN001, ANN202
    # stft_terms over every frame of (deg, ref), chunk by chunk (window, MKL rfft, reduce);
    # sums[4] ends as the whole Σ |ln P_D - ln P_R|
    ri = spectra.view(np.float64)
    powers = np.empty((2, spectra.shape[2]))
    products, exponents = new_lanes()
    n_frames = 1 + deg.size // hop
    for f0 in range(0, n_frames, frames.shape[0]):
        count = min(frames.shape[0], n_frames - f0)
        window_frames(deg, ref, f0, hop, w, frames[:count])
        transform(fft, table, frames, spectra, count)
        stft_terms(ri[:count], eps, with_lin, direct_logs, powers, sums, products, exponents)
    sums[4] += log_ratio_sum(products, exponents)


# ----------------------------------------------------------------------------- mel distance


@_jit
def mel_frames(ri, mag, w0, w1, starts, mel):  # noqa: ANN001, ANN202
    # mel[f, s, m] = Σ_k fb[m, k] |X_s[f, k]|: magnitudes row by row (vectorised square roots),
    # then each bin read once (see _mel_runs) for four rows at a time (independent sums)
    n = mag.shape[2]
    for f in range(ri.shape[0]):
        for s in range(2):
            a = ri[f, s]
            row = mag[f, s]
            for k in range(n):
                row[k] = np.sqrt(a[2 * k] * a[2 * k] + a[2 * k + 1] * a[2 * k + 1])
    rows = 2 * ri.shape[0]
    x = mag[: ri.shape[0]].reshape(rows, n)
    out = mel.reshape(rows, mel.shape[2])
    for r0 in range(0, rows, 4):
        x0 = x[r0]
        x1 = x[r0 + 1]
        x2 = x[min(r0 + 2, rows - 1)]
        x3 = x[min(r0 + 3, rows - 1)]
        c0 = 0.0
        c1 = 0.0
        c2 = 0.0
        c3 = 0.0
        for m in range(out.shape[1]):
            u0 = 0.0
            u1 = 0.0
            u2 = 0.0
            u3 = 0.0
            v0 = 0.0
            v1 = 0.0
            v2 = 0.0
            v3 = 0.0
            for k in range(starts[m], starts[m + 1]):
                p = w0[k]
                q = w1[k]
                u0 += p * x0[k]
                u1 += p * x1[k]
                u2 += p * x2[k]
                u3 += p * x3[k]
                v0 += q * x0[k]
                v1 += q * x1[k]
                v2 += q * x2[k]
                v3 += q * x3[k]
            out[r0, m] = u0 + c0
            out[r0 + 1, m] = u1 + c1
            if r0 + 2 < rows:
                out[r0 + 2, m] = u2 + c2
                out[r0 + 3, m] = u3 + c3
            c0 = v0
            c1 = v1
            c2 = v2
            c3 = v3


@_jit
def mel_scan(deg, ref, hop, w, fft, table, frames, spectra, mag, w0, w1, starts, mel):  # noqa: ANN001, ANN202
    # mel_frames over every frame of (deg, ref), chunk by chunk (window, MKL rfft, reduce)
    ri = spectra.view(np.float64)
    for f0 in range(0, mel.shape[0], frames.shape[0]):
        count = min(frames.shape[0], mel.shape[0] - f0)
        window_frames(deg, ref, f0, hop, w, frames[:count])
        transform(fft, table, frames, spectra, count)
        mel_frames(ri[:count], mag, w0, w1, starts, mel[f0 : f0 + count])


@_jit
def mel_terms(mel, eps, direct_logs):  # noqa: ANN001, ANN202
    # (Σ |M_D - M_R|, Σ |ln max(M_D, eps) - ln max(M_R, eps)|) over mel [F, 2, n_mels]; sums
    # and stores in separate loops (see stft_terms)
    n = mel.shape[2]
    products, exponents = new_lanes()
    mag = 0.0
    logs = 0.0
    rounds = 0
    for f in range(mel.shape[0]):
        d = mel[f, 0]
        r = mel[f, 1]
        for k in range(n):
            mag += abs(d[k] - r[k])
            if direct_logs:
                logs += abs(math.log(max(d[k], eps)) - math.log(max(r[k], eps)))
        if direct_logs:
            continue
        for k0 in range(0, n, LANES):
            hi = products[0]
            lo = products[1]
            for j in range(min(LANES, n - k0)):
                cd = max(d[k0 + j], eps)
                cr = max(r[k0 + j], eps)
                hi[j] *= max(cd, cr)
                lo[j] *= min(cd, cr)
            rounds += 1
            if rounds == ROUNDS:
                renormalise(products, exponents)
                rounds = 0
    renormalise(products, exponents)
    return mag, logs + log_ratio_sum(products, exponents)
