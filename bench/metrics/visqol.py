"""ViSQOL v3 through ``visqol-python`` (a pure-Python port of Google's ViSQOL v3.3.3).

Speech mode runs at 16 kHz with the deep-lattice TFLite MOS mapper bundled with the package
(the C++ v3 default; needs ``ai-edge-litert``). Audio mode runs at 48 kHz with the bundled
libsvm nu-SVR model. One :class:`visqol.VisqolApi` per metric is built lazily and reused, since
loading the models costs more than scoring a short pair.

``visqol-python`` is much faster when ``numba`` is importable (its JIT kernels are then used);
results are the same either way.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from bench.errors import MetricError
from bench.metrics import register_metric_variants
from bench.metrics.base import Metric, MetricInfo
from bench.metrics.pesq import check_not_silent, check_pair

VISQOL_PYTHON_VERSION = "3.8.0"

_COMMON = {
    "package": f"visqol-python>={VISQOL_PYTHON_VERSION}",
    "port_of": "google/visqol v3.3.3",
    "search_window": 60,
    "global_alignment": True,
    "realignment": True,
    "min_freq_hz": 50.0,
    "window_overlap": 0.25,
}


@register_metric_variants(
    MetricInfo(
        id="visqol_speech",
        version="1",
        direction="higher",
        sample_rate=16000,
        reference=(
            "api = visqol.VisqolApi(); api.create(mode='speech', use_lattice_model=True); "
            "api.measure_from_arrays(ref, deg, 16000).moslqo"
        ),
        settings={
            **_COMMON,
            "mode": "speech",
            "use_lattice_model": True,
            "quality_mapper": "bundled deep-lattice TFLite model "
            "(lattice_tcditugenmeetpackhref_ls2_nl60_lr12_bs2048_learn.005_ep2400_train1_7_raw.tflite)",
            "gammatone_bands": 21,
            "patch_size_frames": 20,
            "patch_selection": "VAD-based (speech mode)",
            "use_unscaled_speech": False,
        },
        unit="MOS-LQO",
        description=(
            "ViSQOL v3 speech mode at 16 kHz with the lattice MOS mapper that is the C++ default, so "
            "scores match the reference binary rather than the older polynomial fallback."
        ),
    ),
    MetricInfo(
        id="visqol_audio",
        version="1",
        direction="higher",
        sample_rate=48000,
        reference="api = visqol.VisqolApi(); api.create(mode='audio'); api.measure_from_arrays(ref, deg, 48000).moslqo",
        settings={
            **_COMMON,
            "mode": "audio",
            "use_lattice_model": False,
            "quality_mapper": "bundled libsvm nu-SVR model (libsvm_nu_svr_model.txt)",
            "gammatone_bands": 32,
            "patch_size_frames": 30,
            "patch_selection": "image patches (audio mode)",
        },
        unit="MOS-LQO",
        description=(
            "ViSQOL v3 audio mode at 48 kHz (the rate its SVR model was trained for): full-band "
            "quality including content above 8 kHz that the speech metrics ignore."
        ),
    ),
)
class Visqol(Metric):
    """ViSQOL MOS-LQO equal to ``VisqolApi.measure_from_arrays(ref, deg, rate).moslqo``."""

    info: MetricInfo

    def __init__(self) -> None:
        self._api: Any = None
        self._lock = threading.Lock()

    def availability(self) -> tuple[bool, str]:
        try:
            import visqol  # noqa: F401

            if self.info.settings["use_lattice_model"]:
                import ai_edge_litert  # noqa: F401
            else:
                import libsvm  # noqa: F401
        except ImportError as exc:
            return False, f"{self.info.id} needs visqol-python with its model runtime: {exc}"
        return True, ""

    def _get_api(self) -> Any:
        if self._api is None:
            from visqol import VisqolApi

            api = VisqolApi()
            st = self.info.settings
            kwargs: dict[str, Any] = {
                "mode": st["mode"],
                "search_window": st["search_window"],
                "disable_global_alignment": not st["global_alignment"],
                "disable_realignment": not st["realignment"],
            }
            if st["mode"] == "speech":
                kwargs["use_lattice_model"] = st["use_lattice_model"]
                kwargs["use_unscaled_speech"] = st["use_unscaled_speech"]
            api.create(**kwargs)
            self._api = api
        return self._api

    def compute(self, reference: np.ndarray, degraded: np.ndarray) -> float:
        """Score one pair; ViSQOL's internal failures (too short, no patches) become MetricError."""
        mid = self.info.id
        check_pair(reference, degraded, mid)
        check_not_silent(reference, mid)  # ViSQOL would happily score a silent reference
        rate = self.info.sample_rate
        with self._lock:  # the TFLite interpreter and manager are not re-entrant
            api = self._get_api()
            try:
                result = api.measure_from_arrays(reference, degraded, rate)
            except (ValueError, IndexError, ZeroDivisionError, FloatingPointError) as exc:
                raise MetricError(
                    f"{mid}: ViSQOL could not score this {reference.size / rate:.3f} s pair "
                    f"(too short or no usable patches?): {type(exc).__name__}: {exc}"
                ) from exc
        value = float(result.moslqo)
        if not np.isfinite(value):
            raise MetricError(f"{mid}: ViSQOL returned a non-finite MOS-LQO ({value})")
        return value
