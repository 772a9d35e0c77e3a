"""Reconstruction: how close is the codec's output to its input, by full-reference metrics.

The pair is aligned by the rule in :func:`bench.audio.prepare_pair`: codec output is resampled
back to the reference rate (soxr VHQ), tail-trimmed or zero-padded to the reference length, mixed
to mono, then both signals are resampled to each metric's working rate.
"""

from __future__ import annotations

from bench.task import Task, register_task


@register_task
class ReconstructionTask(Task):
    name = "reconstruction"
    description = "Full-reference quality of codec resynthesis: PESQ, STOI, ViSQOL, spectral distances, SI-SDR"
    default_metrics = (
        "pesq_wb",
        "pesq_nb",
        "stoi",
        "estoi",
        "visqol_speech",
        "visqol_audio",
        "mel_distance",
        "stft_distance",
        "si_sdr",
    )
