"""Shared plumbing for benchmarks: JSON lines to stdout and to benchmarks/results/<name>.jsonl."""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from audiolang.metrics import mean_and_std

__all__ = [
    "RESULTS",
    "Recorder",
    "Results",
    "cached_finetune",
    "cached_run",
    "mean_and_std",
    "median_ratio",
    "paired_timings",
    "pretrain_sweep_arguments",
    "sweep_arguments",
]

RESULTS = Path(__file__).resolve().parent / "results"


class Recorder:
    """Collects result records; each is printed as a JSON line and appended to the results file."""

    def __init__(self, name: str) -> None:
        RESULTS.mkdir(parents=True, exist_ok=True)
        self.path = RESULTS / f"{name}.jsonl"
        self.path.write_text("")
        self.context = {
            "benchmark": name,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "machine": platform.machine(),
            "python": platform.python_version(),
        }

    def record(self, **fields: Any) -> dict[str, Any]:
        row = {**self.context, **fields}
        line = json.dumps(row, sort_keys=False)
        print(line, flush=True)
        with self.path.open("a") as f:
            f.write(line + "\n")
        return row


class Results:
    """The sweep's JSON lines: read back on start (finished runs are skipped), appended one per finished run."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.lines = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []

    def find(self, **key) -> dict | None:
        return next((line for line in self.lines if all(line.get(k) == v for k, v in key.items())), None)

    def add(self, **line) -> dict:
        print(json.dumps(line), flush=True)
        with self.path.open("a") as f:
            f.write(json.dumps(line) + "\n")
        self.lines.append(line)
        return line


def timed(step: Callable[[], None]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call of `step`."""
    wall, cpu = time.perf_counter(), time.process_time()
    step()
    return time.perf_counter() - wall, time.process_time() - cpu


def paired_timings(
    steps: dict[str, Callable[[], None]], warmup: int, repeats: int
) -> dict[str, dict[str, list[float]]]:
    """Time two steps in alternating (ABBA) order: `{"wall": {name: [s, ...]}, "cpu": {name: [...]}}`.

    Alternating which step goes first cancels the advantage of running right after the other one, and steps of the
    same round run under the same machine load; `warmup` rounds are run but not recorded.
    """
    first, second = steps
    wall: dict[str, list[float]] = {name: [] for name in steps}
    cpu: dict[str, list[float]] = {name: [] for name in steps}
    for round_index in range(warmup + repeats):
        order = (first, second) if round_index % 2 == 0 else (second, first)
        elapsed = {name: timed(steps[name]) for name in order}
        if round_index >= warmup:
            for name, (wall_time, cpu_time) in elapsed.items():
                wall[name].append(wall_time)
                cpu[name].append(cpu_time)
    return {"wall": wall, "cpu": cpu}


def median_ratio(numerators: list[float], denominators: list[float]) -> float:
    """Median of per-round ratios: steps of one round ran under the same load, so this resists load changes (other
    processes on a shared machine) better than the ratio of the medians."""
    return statistics.median(n / d for n, d in zip(numerators, denominators, strict=True))


# What every sweep run shares: no checkpoints or model saving (only the results file), no evaluation during training,
# length-grouped batches, no logging integrations, data loading in the main process.
SWEEP_TRAINING_ARGUMENTS = [
    "--warmup_steps", "0.1",
    "--eval_strategy", "no",
    "--save_strategy", "no",
    "--train_sampling_strategy", "group_by_length",
    "--save_model", "false",
    "--report_to", "none",
    "--disable_tqdm", "true",
    "--dataloader_num_workers", "0",
]  # fmt: skip


def pretrain_sweep_arguments(seed: int, batch_size: int, learning_rate: float) -> list[str]:
    """`run_pretrain.py` arguments that every sweep's pre-training shares: a checkpoint per epoch (a killed run
    resumes from it), no logging integrations, data loading in the main process."""
    return [
        "--seed", str(seed),
        "--per_device_train_batch_size", str(batch_size),
        "--per_device_eval_batch_size", str(batch_size),
        "--learning_rate", str(learning_rate),
        "--warmup_steps", "0.1",
        "--save_strategy", "epoch",
        "--report_to", "none",
        "--disable_tqdm", "true",
        "--dataloader_num_workers", "0",
    ]  # fmt: skip


def sweep_arguments(
    task: str,
    seed: int,
    epochs: float,
    batch_size: int,
    learning_rate: float,
    corpus_preset: str,
    corpus_dir: str | None,
) -> list[str]:
    """`run_finetune.py` arguments of one sweep run, apart from the model and its family's options."""
    argv = [
        "--task", task,
        "--corpus_preset", corpus_preset,
        "--seed", str(seed),
        "--num_train_epochs", str(epochs),
        "--per_device_train_batch_size", str(batch_size),
        "--per_device_eval_batch_size", str(batch_size),
        "--learning_rate", str(learning_rate),
        *SWEEP_TRAINING_ARGUMENTS,
    ]  # fmt: skip
    return argv + (["--corpus_dir", corpus_dir] if corpus_dir else [])


def cached_run(script: str, results_name: str, output_dir: Path, argv: list[str]) -> dict:
    """`run_scripts/<script>` with `argv` (plus `--output_dir output_dir`), in its own process, unless that folder
    already holds its results file `results_name`: sweeps resume where they stopped."""
    results_file = output_dir / results_name
    if not results_file.is_file():
        path = Path(__file__).resolve().parent.parent / "run_scripts" / script
        subprocess.run([sys.executable, str(path), *argv, "--output_dir", str(output_dir)], check=True)
    return json.loads(results_file.read_text())


def cached_finetune(output_dir: Path, argv: list[str]) -> dict:
    """`cached_run` of `run_finetune.py`, whose results file is `finetune_results.json`."""
    return cached_run("run_finetune.py", "finetune_results.json", output_dir, argv)
