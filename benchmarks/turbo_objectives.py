#!/usr/bin/env python
"""Turbo's Table 1 and Fig. 2-3 on the embedded corpus: vanilla vs +CL_cross vs Turbo, over seeds.

For every task (default: emotion, directed), objective (vanilla, cross, turbo) and seed, fine-tunes
`--model_name_or_path` with `run_scripts/run_finetune.py --model_type turbo` (the same encoders, data, schedule and
seed for the three objectives), then:

- prints and writes one JSON line per run and one per (task, objective) with the mean and sample standard deviation
  across seeds to `benchmarks/results/turbo_objectives.jsonl` (emotion: WA/UA; directed: ACC/EER; both: alignment
  and uniformity of the L2-normalised test embeddings, Turbo's Listing 2);
- draws the alignment-uniformity plot (Fig. 2) and the 2-D density of audio embeddings (Fig. 3) with
  `benchmarks/plot_turbo.py`.

Runs whose `finetune_results.json` exists are reused, so an interrupted sweep resumes where it stopped.

    python benchmarks/turbo_objectives.py --model_name_or_path out/dsclap-init --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import Recorder, cached_finetune, mean_and_std, sweep_arguments  # noqa: E402

TASK_METRICS = {
    "emotion": ("test_wa", "test_ua"),
    "directed": ("test_accuracy", "test_eer"),
    "intent": ("test_accuracy", "test_macro_f1"),
}
EMBEDDING_METRICS = ("test_alignment", "test_uniformity_audio", "test_uniformity_text")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model_name_or_path", default="out/dsclap-init", help="a DSCLAP or Turbo folder")
    parser.add_argument("--tasks", nargs="+", default=["emotion", "directed"], choices=sorted(TASK_METRICS))
    parser.add_argument("--objectives", nargs="+", default=["vanilla", "cross", "turbo"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--output_dir", default="out/turbo-objectives")
    parser.add_argument(
        "--corpus_dir", default=None, help="a built corpus folder (default: the corpus cache)"
    )
    parser.add_argument("--corpus_preset", default="default")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--train_size", type=int, default=None, help="a seeded subset of the training rows")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--text_encoder_learning_rate", type=float, default=2e-5)
    parser.add_argument(
        "--freeze_audio_encoder", action="store_true", help="fine-tune with the audio tower frozen (cheaper)"
    )
    parser.add_argument(
        "--config_overrides",
        default=None,
        help="run_finetune.py's, e.g. 'audio_config.use_weighted_layer_sum=true' (learned weights of the audio layers)",
    )
    parser.add_argument("--name", default="turbo_objectives", help="results file name")
    return parser.parse_args(argv)


def finetune(args: argparse.Namespace, task: str, objective: str, seed: int) -> dict:
    argv = [
        "--model_type", "turbo",
        "--objective", objective,
        "--model_name_or_path", args.model_name_or_path,
        "--text_encoder_learning_rate", str(args.text_encoder_learning_rate),
        *sweep_arguments(
            task, seed, args.epochs, args.batch_size, args.learning_rate, args.corpus_preset, args.corpus_dir
        ),
    ]  # fmt: skip
    if args.train_size:
        argv += ["--train_size", str(args.train_size)]
    if args.freeze_audio_encoder:
        argv += ["--freeze_audio_encoder", "true"]
    if args.config_overrides:
        argv += ["--config_overrides", args.config_overrides]
    return cached_finetune(Path(args.output_dir) / task / objective / f"seed-{seed}", argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    recorder = Recorder(args.name)
    for task in args.tasks:
        keys = TASK_METRICS[task] + EMBEDDING_METRICS
        for objective in args.objectives:
            rows = []
            for seed in args.seeds:
                result = finetune(args, task, objective, seed)
                rows.append(result)
                recorder.record(
                    kind="run",
                    task=task,
                    objective=objective,
                    seed=seed,
                    model=args.model_name_or_path,
                    train_size=result["train_size"],
                    **{key: result[key] for key in keys if key in result},
                )
            recorder.record(
                kind="summary",
                task=task,
                objective=objective,
                seeds=args.seeds,
                model=args.model_name_or_path,
                epochs=args.epochs,
                train_size=rows[0]["train_size"],
                **mean_and_std(rows, keys),
            )
    from plot_turbo import plot

    for path in plot(Path(args.output_dir), recorder.path):
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
