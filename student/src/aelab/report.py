"""Recording a lab's headline numbers, so `make solutions` can collect them into build/metrics.csv."""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

from .runtime import budget, get_device

METRICS_ENV = "AELAB_METRICS"
_started = time.perf_counter()


def record(lab: str, metric: str, value: float) -> None:
    """Note one number of a lab. It is appended to the CSV named by AELAB_METRICS when that is set
    (the course's runners set it) and otherwise ignored. `seconds` is the time since
    aelab was imported, i.e. roughly how long the notebook had run when the number was reached."""
    value = float(value)
    path = os.environ.get(METRICS_ENV, "").strip()
    if path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        new = not target.exists() or target.stat().st_size == 0
        with target.open("a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(["lab", "metric", "value", "budget", "device", "seconds"])
            writer.writerow([lab, metric, f"{value:.6g}", budget(), get_device().type,
                             f"{time.perf_counter() - _started:.1f}"])
