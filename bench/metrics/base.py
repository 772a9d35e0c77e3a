"""What a metric is: typed metadata plus a pure function of (reference, degraded).

Each metric states the exact reference implementation and settings it reproduces, so a number in
a table can be traced to one package call. A metric that cannot score a pair raises
:class:`~bench.errors.MetricError`; it never returns a stand-in number.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np


@dataclass(frozen=True)
class MetricInfo:
    id: str
    version: str
    """Bumped whenever settings change; part of every cache key."""
    direction: Literal["higher", "lower"]
    sample_rate: int
    """Both signals are resampled (soxr VHQ) to this rate before scoring."""
    reference: str
    """The package call this metric equals, e.g. ``pesq.pesq(16000, ref, deg, 'wb')``."""
    settings: Mapping[str, Any] = field(default_factory=dict)
    unit: str = ""
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["settings"] = dict(self.settings)
        return d


class Metric(ABC):
    """A full-reference metric over mono float signals of equal length at ``info.sample_rate``."""

    info: MetricInfo

    def availability(self) -> tuple[bool, str]:
        return True, ""

    @abstractmethod
    def compute(self, reference: np.ndarray, degraded: np.ndarray) -> float:
        """Score one pair; raise MetricError when the pair cannot be scored."""
