"""Corpus-level aggregates that are not means of rows: ratios of sums and paired differences.

Recomputed from per-utterance rows, so nothing here is stored that the rows do not imply:

* ``wer:J`` / ``wer_ceiling:J`` / ``wer_resyn:J`` — corpus WER Σ errors / Σ reference words of judge J
  (on the codec or LM output / the original / the original resynthesised by an LM's own codec), over the utterances where both counts are ok; ``wer_delta:J`` — their
  difference, with a *paired* bootstrap (the same resampled utterances on both sides);
* ``spk_sim_delta:J``, ``mos_delta:J`` — mean of (codec − ceiling) per utterance, paired bootstrap;
* text alignment: ``<mi>_per_char`` = Σ bits / Σ characters, ``<mi>_per_s`` = Σ bits / Σ seconds,
  ``<mi>_per_kbit`` = Σ bits / Σ token kbits (bits of text information per kbit of tokens),
  ``probe_wer`` = Σ errors / Σ words, ``text_entropy_bits_per_char``.

CIs resample utterances with replacement (percentile bootstrap, seeded like
:mod:`bench.analysis.bootstrap`); a ratio is recomputed on each resample.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.analysis.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED

#: (output metric, numerator metric, denominator metric or "duration_s", direction)
TEXT_RATIOS = [
    (f"{mi}_{suffix}", mi, den, "higher")
    for mi in ("mi_contrastive_bits", "mi_lower_bound_bits")
    for suffix, den in (("per_char", "text_chars"), ("per_s", "duration_s"), ("per_kbit", "token_kbits"))
] + [("probe_wer", "probe_errors", "probe_ref_words", "lower"),
     ("text_entropy_bits_per_char", "text_entropy_bits", "text_chars", "lower")]


#: derived measure -> the per-utterance measures it is computed from (same judge)
_JUDGED_INPUTS = {
    "wer": ("asr_errors", "asr_ref_words"),
    "wer_ceiling": ("asr_errors_ceiling", "asr_ref_words"),
    "wer_resyn": ("asr_errors_resyn", "asr_ref_words"),
    "wer_delta": ("asr_errors", "asr_errors_ceiling", "asr_ref_words"),
    "spk_sim_delta": ("spk_sim", "spk_sim_ceiling"),
    "mos_delta": ("mos", "mos_ceiling"),
}


def inputs_of(metric: str) -> tuple[str, ...]:
    """The stored per-utterance metrics a summary metric is computed from (itself when it is stored)."""
    measure, sep, judge = metric.partition(":")
    if sep and measure in _JUDGED_INPUTS:
        return tuple(f"{m}:{judge}" for m in _JUDGED_INPUTS[measure])
    for out, num, den, _ in TEXT_RATIOS:
        if metric == out:
            return (num,) if den == "duration_s" else (num, den)
    return (metric,)


def _resample_idx(n: int, n_resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def ratio_ci(num: np.ndarray, den: np.ndarray, *, n_resamples: int = DEFAULT_RESAMPLES,
             confidence: float = DEFAULT_CONFIDENCE, seed: int = DEFAULT_SEED) -> tuple[float, float, float]:
    """Σnum/Σden with a percentile-bootstrap CI over items (NaN CI for one item)."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    value = float(num.sum() / den.sum()) if den.sum() else float("nan")
    if num.size < 2:
        return value, float("nan"), float("nan")
    idx = _resample_idx(num.size, n_resamples, seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        stats = num[idx].sum(1) / den[idx].sum(1)
    alpha = (1 - confidence) / 2
    lo, hi = np.nanquantile(stats, [alpha, 1 - alpha])
    return value, float(lo), float(hi)


def ratio_diff_ci(num_a: np.ndarray, num_b: np.ndarray, den: np.ndarray, *, n_resamples: int = DEFAULT_RESAMPLES,
                  confidence: float = DEFAULT_CONFIDENCE, seed: int = DEFAULT_SEED) -> tuple[float, float, float]:
    """(Σa − Σb)/Σden with a paired bootstrap: one resample of items serves both sides."""
    return ratio_ci(np.asarray(num_a, float) - np.asarray(num_b, float), den, n_resamples=n_resamples,
                    confidence=confidence, seed=seed)


def _wide(group: pd.DataFrame) -> pd.DataFrame:
    ok = group[(group["status"] == "ok") & np.isfinite(pd.to_numeric(group["value"], errors="coerce"))]
    wide = ok.pivot_table(index="item_id", columns="metric", values="value", aggfunc="first")
    if "duration_s" in group.columns:
        wide["duration_s"] = group.drop_duplicates("item_id").set_index("item_id")["duration_s"]
    return wide


def corpus_summary(results: pd.DataFrame, *, n_resamples: int = DEFAULT_RESAMPLES,
                   confidence: float = DEFAULT_CONFIDENCE, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """Derived summary rows (same columns as :func:`bench.analysis.summary.summarize`)."""
    if results.empty or "item_id" not in results.columns:
        return pd.DataFrame()
    keys = (["dataset"] if "dataset" in results.columns else []) + ["codec", "task"]
    kw = {"n_resamples": n_resamples, "confidence": confidence, "seed": seed}
    rows = []
    for key, group in results.groupby(keys, dropna=False, sort=True):
        metrics = set(group["metric"])
        wide = None
        head = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        head["codec_family"] = group["codec_family"].dropna().iloc[0] if "codec_family" in group and group[
            "codec_family"].notna().any() else None
        for col in ("declared_bitrate_bps", "measured_bitrate_bps", "overhead_bitrate_bps"):
            head[col] = float(group[col].dropna().iloc[0]) if col in group and group[col].notna().any() else float("nan")

        def emit(metric: str, direction: str, value: float, lo: float, hi: float, n: int, n_total: int,
                 head: dict = head) -> None:
            rows.append({**head, "metric": metric, "direction": direction, "mean": value, "ci_low": lo,
                         "ci_high": hi, "n": n, "n_failed": n_total - n, "median": float("nan"),
                         "std": float("nan")})

        n_total = group["item_id"].nunique()
        for judge in sorted({m.split(":", 1)[1] for m in metrics if m.startswith("asr_errors:")}):
            wide = _wide(group) if wide is None else wide
            cols = [f"asr_errors:{judge}", f"asr_ref_words:{judge}"]
            if all(c in wide for c in cols):
                sub = wide[cols].dropna()
                if len(sub):
                    emit(f"wer:{judge}", "lower", *ratio_ci(sub[cols[0]], sub[cols[1]], **kw), len(sub), n_total)
            for ceiling in ("ceiling", "resyn"):  # ground truth; the LM's own codec (generation tasks)
                ceil = f"asr_errors_{ceiling}:{judge}"
                if ceil in wide and cols[1] in wide:
                    sub = wide[[ceil, cols[1]]].dropna()
                    if len(sub):
                        emit(f"wer_{ceiling}:{judge}", "lower", *ratio_ci(sub[ceil], sub[cols[1]], **kw), len(sub),
                             n_total)
            ceil = f"asr_errors_ceiling:{judge}"
            if all(c in wide for c in [*cols, ceil]):
                sub = wide[[*cols, ceil]].dropna()
                if len(sub):
                    emit(f"wer_delta:{judge}", "lower", *ratio_diff_ci(sub[cols[0]], sub[ceil], sub[cols[1]], **kw),
                         len(sub), n_total)
        for measure, direction in (("spk_sim", "higher"), ("mos", "higher")):
            for judge in sorted({m.split(":", 1)[1] for m in metrics if m.startswith(f"{measure}:")}):
                wide = _wide(group) if wide is None else wide
                a, b = f"{measure}:{judge}", f"{measure}_ceiling:{judge}"
                if a in wide and b in wide:
                    sub = wide[[a, b]].dropna()
                    if len(sub):
                        emit(f"{measure}_delta:{judge}", direction,
                             *ratio_diff_ci(sub[a], sub[b], np.ones(len(sub)), **kw), len(sub), n_total)
        for out, num, den, direction in TEXT_RATIOS:
            if num not in metrics or (den != "duration_s" and den not in metrics):
                continue
            wide = _wide(group) if wide is None else wide
            if num in wide and den in wide:
                sub = wide[[num, den]].dropna()
                if len(sub):
                    emit(out, direction, *ratio_ci(sub[num], sub[den], **kw), len(sub), n_total)
    return pd.DataFrame(rows)
