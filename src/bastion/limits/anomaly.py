"""Usage jumps: a key or user far above its own baseline (an EWMA of its past windows).

Each subject's usage is counted in fixed windows. When a window closes, its
count feeds the subject's moving baseline (missing windows count as zero). An
alert fires, at most once per window, when the open window's count reaches the
minimum volume and exceeds ``factor`` times the baseline. Baselines are kept in
this process for the subjects seen most recently, within a fixed bound.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from bastion.limits.alerts import LimitAlert
from bastion.limits.config import AnomalySettings

#: Baselines below this are treated as this, so a near-silent subject needs a real jump.
MIN_BASELINE = 1.0


@dataclass(slots=True)
class _Track:
    window: int
    count: float = 0.0
    baseline: float = 0.0
    windows_seen: int = 0
    alerted: bool = False


class AnomalyDetector:
    """Watches request and token rates per key and per user."""

    def __init__(self, settings: AnomalySettings, clock: Callable[[], float] | None = None) -> None:
        self._s = settings
        self._clock = clock or time.time
        self._tracks: OrderedDict[tuple[str, str, str], _Track] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._tracks)

    def observe(self, scope: str, subject: str, metric: str, amount: float) -> LimitAlert | None:
        """Count ``amount`` of ``metric`` for a subject; return an alert when it jumps."""
        if not self._s.enabled or amount <= 0:
            return None
        minimum = self._s.min_requests if metric == "requests" else self._s.min_tokens
        with self._lock:
            window = math.floor(self._clock() / self._s.window_seconds)
            key = (scope, subject, metric)
            track = self._tracks.get(key)
            if track is None:
                track = _Track(window=window)
                self._tracks[key] = track
                if len(self._tracks) > self._s.max_subjects:
                    self._tracks.popitem(last=False)
            else:
                self._tracks.move_to_end(key)
                self._roll(track, window)
            track.count += amount
            if track.alerted or track.windows_seen < self._s.warmup_windows:
                return None
            threshold = self._s.factor * max(track.baseline, MIN_BASELINE)
            if track.count < minimum or track.count <= threshold:
                return None
            track.alerted = True
            return LimitAlert(
                kind="anomaly",
                message=(
                    f"{metric} for this {scope} rose to {track.count:g} "
                    f"in {self._s.window_seconds:g} s, "
                    f"{track.count / max(track.baseline, MIN_BASELINE):.1f} times its usual "
                    f"{track.baseline:.1f}"
                ),
                scope=scope,
                subject=subject,
                metric=metric,
                window=f"{self._s.window_seconds:g}s",
                limit=round(threshold, 3),
                observed=track.count,
                data={"baseline": round(track.baseline, 3), "factor": self._s.factor},
            )

    def _roll(self, track: _Track, window: int) -> None:
        passed = window - track.window
        if passed <= 0:
            return
        a = self._s.alpha
        if track.windows_seen == 0:
            # The first window seeds the baseline instead of being averaged against zero.
            track.baseline = track.count
        else:
            track.baseline = a * track.count + (1 - a) * track.baseline
        # The windows without any traffic in between each pull the baseline towards zero.
        track.baseline *= (1 - a) ** (passed - 1)
        track.windows_seen += passed
        track.window = window
        track.count = 0.0
        track.alerted = False
