"""Per-trial metrics for the Ray dashboard: exported with ray.util.metrics, so the Prometheus that the
dashboard's metrics view scrapes sees them, and each node's metrics endpoint
(http://NODE:METRICS_EXPORT_PORT/metrics) serves them without Prometheus. Names carry Ray's ``ray_`` prefix
there: ray_stgcn_val_top1{study=...,subset=...,trial=...}.
"""

from __future__ import annotations

import functools

from ray.util.metrics import Gauge

TAGS = ("study", "subset", "trial")
EXPORTED = {"epoch": "epochs finished", "val_top1": "validation top-1 (fraction)",
            "train_loss": "training loss of the last epoch", "clips_per_s": "training clips per second"}


@functools.lru_cache(maxsize=1)
def _gauges() -> dict[str, Gauge]:
    """Created once per worker process (a gauge is registered with the node's metrics agent)."""
    return {key: Gauge(f"stgcn_{key}", description=text, tag_keys=TAGS) for key, text in EXPORTED.items()}


def publish(study: str, subset: str, trial: str, metrics: dict) -> None:
    tags = {"study": study, "subset": subset, "trial": trial}
    for key, gauge in _gauges().items():
        value = metrics.get(key)
        if value is not None and value == value:  # NaN (a diverged epoch) is not exported
            gauge.set(float(value), tags=tags)
