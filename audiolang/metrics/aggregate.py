"""Summaries over runs: the mean and sample standard deviation of each metric across seeds or folds."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

# What `Trainer.evaluate` / `Trainer.predict` report beside the task metrics of `compute_metrics`.
TRAINER_BOOKKEEPING = frozenset({"loss", "runtime", "samples_per_second", "steps_per_second", "epoch"})


def mean_and_std(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[str, float]:
    """`key` (mean) and `key_std` (sample standard deviation, 0 for one row) of each key present in the rows; keys
    that no row has are left out."""
    summary = {}
    for key in keys:
        values = [row[key] for row in rows if key in row]
        if values:
            summary[key] = statistics.fmean(values)
            summary[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return summary


def summarise_runs(runs: Sequence[dict[str, Any]], prefix: str = "test_") -> dict[str, Any]:
    """One run's results as they are; for several (k-fold cross-validation, as in Turbo's Sec. 4.1), the mean and
    sample standard deviation across runs of every `prefix` metric of the first run (not the Trainer's bookkeeping:
    runtime, loss, ...), with the runs themselves under `folds`."""
    if not runs:
        raise ValueError("`runs` is empty: there is nothing to summarise.")
    if len(runs) == 1:
        return dict(runs[0])
    keys = [
        key for key in runs[0] if key.startswith(prefix) and key[len(prefix) :] not in TRAINER_BOOKKEEPING
    ]
    return {**mean_and_std(runs, keys), "folds": list(runs)}
