#!/usr/bin/env python
"""Gradient caching (GradCache, Gao et al. 2021) against the whole batch in one pass: peak memory and time of one
DSCLAP training step (forward, loss, backward) at `--batch_size` rows, whole or in `--micro_batch_size` micro-batches
(`audiolang.training.gradient_cached_backward`, what `--contrastive_micro_batch_size` runs).

Each measurement runs in a fresh interpreter, so that one step's allocations cannot hide in another's: the model
and the batch are built, one step of 2 rows allocates the gradients, then the measured step runs. `peak_rss_mib` is
the rise of the process's peak resident memory (`ru_maxrss`) over its resident memory just before the measured step:
the step's activations, autograd graph and temporaries, as the operating system counts them (tracemalloc cannot see
torch's allocations). `step_s` is that step's wall time. The targets of issue 22: memory of the cached step <= 1/4
of the whole batch's, time <= 1.5x.

    python benchmarks/bench_gradient_cache.py [--preset small] [--batch_size 256] [--micro_batch_size 32]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Recorder  # noqa: E402

SAMPLING_RATE = 16_000


def current_rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(args: argparse.Namespace) -> dict:
    """One measured step in this process."""
    import torch

    from audiolang import DsclapConfig, DsclapModel
    from audiolang.training import gradient_cached_backward

    torch.manual_seed(0)
    model = DsclapModel(DsclapConfig.from_preset(args.preset)).train()
    samples = int(args.seconds * SAMPLING_RATE)
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(samples // 2, samples + 1, (args.batch_size,), generator=generator)
    audio_mask = (torch.arange(samples)[None, :] < lengths[:, None]).long()
    batch = {
        "input_values": torch.randn(args.batch_size, samples, generator=generator) * audio_mask,
        "audio_attention_mask": audio_mask,
        "input_ids": torch.randint(5, 1000, (args.batch_size, args.text_tokens), generator=generator),
        "attention_mask": torch.ones(args.batch_size, args.text_tokens, dtype=torch.long),
    }

    def step(rows: dict) -> float:
        if args.micro_batch_size:
            return gradient_cached_backward(model, rows, args.micro_batch_size).loss.item()
        loss = model(**rows).loss
        loss.backward()
        return loss.item()

    step({k: v[:2] for k, v in batch.items()})  # allocates the gradients, which both kinds of step need
    before = current_rss_mib()
    start = time.perf_counter()
    loss = step(batch)
    seconds = time.perf_counter() - start
    return {
        "loss": loss,
        "step_s": seconds,
        "peak_rss_mib": peak_rss_mib() - before,
        "rss_before_mib": before,
    }


def measure(args: argparse.Namespace, micro_batch_size: int) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        "--preset", args.preset,
        "--batch_size", str(args.batch_size),
        "--micro_batch_size", str(micro_batch_size),
        "--seconds", str(args.seconds),
        "--text_tokens", str(args.text_tokens),
    ]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"the measured step failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="small")
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--micro_batch_size", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=1.0, help="longest clip; clips are 50-100 %% of it")
    parser.add_argument("--text_tokens", type=int, default=16)
    parser.add_argument(
        "--repeats", type=int, default=3, help="measurements of each kind (alternating; the fastest is kept)"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return

    import torch

    recorder = Recorder("bench_gradient_cache")
    runs: dict[int, list[dict]] = {0: [], args.micro_batch_size: []}
    for _ in range(args.repeats):
        for micro in runs:
            runs[micro].append(measure(args, micro))
    setting = {
        "preset": args.preset,
        "batch_size": args.batch_size,
        "seconds": args.seconds,
        "text_tokens": args.text_tokens,
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": os.getloadavg()[0],
    }
    best = {micro: min(rows, key=lambda row: row["step_s"]) for micro, rows in runs.items()}
    for micro, row in best.items():
        recorder.record(**setting, micro_batch_size=micro or None, repeats=args.repeats, **row)
    whole, cached = best[0], best[args.micro_batch_size]
    recorder.record(
        **setting,
        micro_batch_size=args.micro_batch_size,
        memory_ratio=cached["peak_rss_mib"] / whole["peak_rss_mib"],
        time_ratio=cached["step_s"] / whole["step_s"],
        memory_target_met=cached["peak_rss_mib"] <= whole["peak_rss_mib"] / 4,
        time_target_met=cached["step_s"] <= 1.5 * whole["step_s"],
    )


if __name__ == "__main__":
    main()
