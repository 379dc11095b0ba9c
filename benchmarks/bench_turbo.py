#!/usr/bin/env python
"""Turbo training-step cost relative to a vanilla step on the same batch.

For each preset, one random padded batch (clips of 60-100 % of `--seconds`, transcripts of `--text_tokens`,
random labels) and one `TurboForSequenceClassification`; the same model is stepped (forward, loss, backward) with
`config.objective = "turbo"` (two forward passes, CE + six InfoNCE terms) and `"vanilla"` (one pass, CE), in
alternating order after `--warmup` unmeasured rounds:

- `turbo_step_s`, `vanilla_step_s`: median wall time of each step;
- `ratio`: median over rounds of turbo / vanilla wall time (the paper's method costs a second forward and backward
  through both encoders, so about 2 is expected); `cpu_ratio`: the same from this process's CPU time, steadier on a
  busy machine; `cross_ratio`: the "+CL_cross" baseline against vanilla (one pass plus one InfoNCE, about 1).

    python benchmarks/bench_turbo.py [--presets tiny small] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Recorder, median_ratio, paired_timings  # noqa: E402
from bench_dsclap import SAMPLING_RATE, make_batch  # noqa: E402

from audiolang import TurboConfig, TurboForSequenceClassification  # noqa: E402

NUM_LABELS = 4


def measure(
    preset: str, batch_size: int, seconds: float, text_tokens: int, warmup: int, repeats: int
) -> dict:
    torch.manual_seed(0)
    config = TurboConfig.from_preset(preset, num_labels=NUM_LABELS)
    model = TurboForSequenceClassification(config).train()
    batch = make_batch(batch_size, seconds, text_tokens, config.text_config.vocab_size, seed=0)
    batch["labels"] = torch.randint(NUM_LABELS, (batch_size,), generator=torch.Generator().manual_seed(1))

    def step(objective: str):
        def run() -> None:
            model.config.objective = objective
            model.zero_grad(set_to_none=True)
            model(**batch).loss.backward()

        return run

    timings = paired_timings({"turbo": step("turbo"), "vanilla": step("vanilla")}, warmup, repeats)
    cross = paired_timings({"cross": step("cross"), "vanilla": step("vanilla")}, 0, max(2, repeats // 2))
    wall, cpu = timings["wall"], timings["cpu"]
    audio_seconds = batch["audio_attention_mask"].sum().item() / SAMPLING_RATE
    turbo_median = statistics.median(wall["turbo"])
    return {
        "preset": preset,
        "parameters": sum(p.numel() for p in model.parameters()),
        "batch_size": batch_size,
        "max_audio_seconds": seconds,
        "text_tokens": text_tokens,
        "repeats": repeats,
        "threads": torch.get_num_threads(),
        "turbo_step_s": round(turbo_median, 4),
        "vanilla_step_s": round(statistics.median(wall["vanilla"]), 4),
        "ratio": round(median_ratio(wall["turbo"], wall["vanilla"]), 4),
        "cpu_ratio": round(median_ratio(cpu["turbo"], cpu["vanilla"]), 4),
        "cross_ratio": round(median_ratio(cross["wall"]["cross"], cross["wall"]["vanilla"]), 4),
        "turbo_audio_seconds_per_second": round(audio_seconds / turbo_median, 3),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"], choices=["tiny", "small", "paper"])
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--paper_batch_size", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0, help="longest clip of the batch")
    parser.add_argument("--text_tokens", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    recorder = Recorder("bench_turbo")
    for preset in args.presets:
        batch_size = args.paper_batch_size if preset == "paper" else args.batch_size
        result = measure(preset, batch_size, args.seconds, args.text_tokens, args.warmup, args.repeats)
        recorder.record(metric="training_step", **result)


if __name__ == "__main__":
    main()
