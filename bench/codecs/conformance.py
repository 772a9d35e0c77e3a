"""Conformance check for any registered op-point: the promises every codec must keep.

Rate and length (±1 frame), finite and not silent on speech, deterministic encode, a batch of
three equal to three singles, and measured bitrate equal to the declared one. Also reports the
costs users compare: encode / decode real-time factor and parameter count.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.audio import resample, to_channels
from bench.codecs import OpPoint
from bench.codecs.base import Codec, Codes, Encoded


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class ConformanceReport:
    codec: str
    checks: list[Check] = field(default_factory=list)
    costs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and all(c.passed for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"codec": self.codec, "passed": self.passed, "error": self.error,
                "checks": [asdict(c) for c in self.checks], "costs": self.costs}


def _same_encoding(a: Encoded, b: Encoded) -> bool:
    if isinstance(a, Codes) and isinstance(b, Codes):
        return all(torch.equal(a.item(i).cpu(), b.item(i).cpu()) for i in range(len(a.n_samples)))
    if isinstance(a, list) and isinstance(b, list):
        return [x.packets for x in a] == [x.packets for x in b]
    return False


def _batch(codec: Codec, items: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([x.shape[-1] for x in items])
    out = torch.zeros(len(items), codec.meta.channels, int(lengths.max()))
    for i, x in enumerate(items):
        out[i, :, : x.shape[-1]] = torch.from_numpy(x)
    return out.to(codec.device), lengths


def speech_inputs(sample_rate: int, channels: int) -> list[np.ndarray]:
    """Three utterances of the embedded corpus of different lengths, at the codec's rate."""
    from bench.audio import load_audio
    from bench.data import resolve_dataset

    ds = resolve_dataset("embedded")
    items = sorted(ds.items, key=lambda it: it.id)[:3]
    out = []
    for k, item in enumerate(items):
        audio = load_audio(ds.path_of(item))
        x = resample(audio.samples, audio.sample_rate, sample_rate)
        x = x[:, : int(sample_rate * (1.0 + 0.37 * k))]  # 1.0 / 1.37 / 1.74 s: unequal lengths
        out.append(np.ascontiguousarray(to_channels(x, channels)))
    return out


def check_codec(op: OpPoint, random_init: bool = False, device: str = "cpu",
                weights: str | None = None) -> ConformanceReport:
    meta = op.meta
    report = ConformanceReport(meta.id)
    try:
        codec = op.build()
        ok, why = codec.availability()
        if not ok:
            report.error = f"unavailable: {why}"
            return report
        if random_init and not codec.random_init_supported:
            report.error = ("cannot build random weights for this implementation (e.g. a fixed TFLite "
                            "graph); run the check with its real weights")
            return report
        codec.load(device, weights=Path(weights) if weights else None, random_init=random_init)
        inputs = speech_inputs(meta.sample_rate, meta.channels)
        run_checks(codec, inputs, report)
    except Exception as exc:
        report.error = f"{type(exc).__name__}: {exc}"
    return report


def run_checks(codec: Codec, inputs: list[np.ndarray], report: ConformanceReport) -> None:
    meta = codec.meta
    add = report.checks.append
    frame = meta.sample_rate / meta.frame_rate if meta.frame_rate else 1
    with torch.inference_mode():
        batch, lengths = _batch(codec, inputs)
        t0 = time.perf_counter()
        enc = codec.encode(batch, lengths)
        encode_s = time.perf_counter() - t0
        enc_again = codec.encode(batch, lengths)
        singles = [codec.encode(*_batch(codec, [x])) for x in inputs]
        if meta.decodable:
            t0 = time.perf_counter()
            audio, out_lengths = codec.decode(enc)
            decode_s = time.perf_counter() - t0
            single_audio = [codec.decode(e)[0][0, :, : x.shape[-1]] for e, x in zip(singles, inputs, strict=True)]

    seconds = float(lengths.sum()) / meta.sample_rate
    model = getattr(codec, "model", None)
    n_params = sum(p.numel() for p in model.parameters()) if isinstance(model, torch.nn.Module) else meta.n_params
    report.costs = {"encode_rtf": encode_s / seconds,
                    "decode_rtf": decode_s / seconds if meta.decodable else None,
                    "n_params": n_params, "algorithmic_latency_s": meta.algorithmic_latency_s,
                    "audio_seconds": seconds}
    _encode_checks(codec, inputs, enc, enc_again, singles, report)
    if not meta.decodable:
        return

    length_err = [abs(int(o) - int(n)) for o, n in zip(out_lengths, lengths, strict=True)]
    add(Check("rate_and_length", audio.shape[1] == meta.channels and max(length_err) <= frame,
              f"channels {audio.shape[1]} (want {meta.channels}); |len out − len in| = {length_err} samples "
              f"(tolerance one frame = {frame:.0f})"))

    rms = []
    finite = bool(torch.isfinite(audio).all())
    for i, x in enumerate(inputs):
        y = audio[i, :, : int(out_lengths[i])].float().cpu().numpy()
        rms.append(float(np.sqrt(np.mean(y**2)) / max(np.sqrt(np.mean(x**2)), 1e-12)))
    add(Check("finite_and_not_silent", finite and min(rms) > 0.01,
              f"finite={finite}; output/input RMS ratios {[round(r, 3) for r in rms]} (need > 0.01)"))

    diffs = [float((audio[i, :, : x.shape[-1]] - single_audio[i]).abs().max()) for i, x in enumerate(inputs)]
    add(Check("batch_equals_singles_audio", max(diffs) < 1e-3,
              f"max |batch − single| decoded audio difference {max(diffs):.2e}"))


def _encode_checks(codec: Codec, inputs: list[np.ndarray], enc: Encoded, enc_again: Encoded,
                   singles: list[Encoded], report: ConformanceReport) -> None:
    """The checks that need only the encoder: determinism, batching, code range, bitrate."""
    meta = codec.meta
    add = report.checks.append
    frame = meta.sample_rate / meta.frame_rate if meta.frame_rate else 1
    add(Check("deterministic_encode", _same_encoding(enc, enc_again), "two encodes of the same batch"))
    same_codes = all(_same_encoding(_select(enc, i), s) for i, s in enumerate(singles))
    add(Check("batch_equals_singles", same_codes, f"codes of a batch of 3 equal 3 single encodes: {same_codes}"))
    if isinstance(enc, Codes):
        distinct = [int(torch.unique(enc.codes[:, k, : int(enc.lengths.min())]).numel())
                    for k in range(enc.codes.shape[1])]
        shape_ok = enc.codes.shape[1] == meta.n_codebooks and all(
            int(enc.codes[:, k].max()) < size for k, size in enumerate(meta.codebook_sizes))
        add(Check("codes_vary_and_fit", shape_ok and min(distinct) > 1,
                  f"{enc.codes.shape[1]} codebooks (want {meta.n_codebooks}); distinct codes per codebook "
                  f"{distinct[:8]}{' ...' if len(distinct) > 8 else ''}; all below their codebook size: {shape_ok}"))

    measured = codec.measure(enc)
    rates = [m.payload_bps for m in measured]
    mean_rate = float(np.average(rates, weights=[x.shape[-1] for x in inputs]))
    nominal = meta.nominal_bitrate_bps
    if nominal is not None:
        # padding to whole frames adds up to one frame per item: allow it on top of 1 %
        slack = max(meta.sample_rate / x.shape[-1] for x in inputs) * frame / meta.sample_rate
        ok = abs(nominal - meta.bitrate_bps) <= 0.01 * meta.bitrate_bps and \
            abs(mean_rate - nominal) <= (0.01 + slack) * nominal
        detail = f"declared {meta.bitrate_bps:.1f} bps, nominal {nominal:.1f} bps, measured {mean_rate:.1f} bps"
    else:
        ok = abs(mean_rate - meta.bitrate_bps) <= meta.bitrate_tolerance * meta.bitrate_bps
        detail = (f"declared {meta.bitrate_bps:.1f} bps, measured payload {mean_rate:.1f} bps "
                  f"(tolerance {meta.bitrate_tolerance:.1%}); overhead "
                  f"{np.mean([m.overhead_bps for m in measured]):.1f} bps")
    add(Check("bitrate", ok, detail))
    report.costs["measured_bitrate_bps"] = mean_rate


def _select(enc: Encoded, i: int) -> Encoded:
    if isinstance(enc, Codes):
        return Codes(enc.codes[i : i + 1], enc.lengths[i : i + 1], [enc.n_samples[i]])
    return [enc[i]]


__all__ = ["Check", "ConformanceReport", "check_codec", "run_checks"]
