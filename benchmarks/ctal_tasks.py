#!/usr/bin/env python
"""CTAL's ablation "w/o pre-training" on the embedded corpus: every downstream task fine-tuned from a pre-trained CTAL
folder and from the same architecture as initialised before pre-training, with the same data, schedule and seeds.

Tasks and what is reported on their test data: emotion (WA, UA), intent (accuracy, macro-F1), directed (accuracy,
EER), valence (MAE, Pearson, Acc2, F1; L1 regression as in the paper's sentiment setting), speaker (EER of cosine
scoring over all trial pairs of the unseen `speaker_test` speakers). One JSON line per run and one per (task, start)
with the mean and sample standard deviation across seeds go to `benchmarks/results/ctal_tasks.jsonl`.

    python run_scripts/run_pretrain.py --model_type ctal --preset small --output_dir out/ctal \
        --save_initial_model out/ctal-init ...
    python benchmarks/ctal_tasks.py --pretrained out/ctal --initial out/ctal-init --seeds 0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Recorder, cached_finetune, mean_and_std, sweep_arguments  # noqa: E402

TASK_METRICS = {
    "emotion": ("test_wa", "test_ua"),
    "intent": ("test_accuracy", "test_macro_f1"),
    "directed": ("test_accuracy", "test_eer"),
    "valence": ("test_mae", "test_pearson", "test_acc2", "test_f1"),
    "speaker": ("test_eer", "eval_accuracy"),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pretrained", default="out/ctal", help="a pre-trained CTAL folder")
    parser.add_argument("--initial", default="out/ctal-init", help="the same model before pre-training")
    parser.add_argument("--tasks", nargs="+", default=list(TASK_METRICS), choices=list(TASK_METRICS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--output_dir", default="out/ctal-tasks")
    parser.add_argument(
        "--corpus_dir", default=None, help="a built corpus folder (default: the corpus cache)"
    )
    parser.add_argument("--corpus_preset", default="default")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=2e-4)
    parser.add_argument("--name", default="ctal_tasks", help="results file name")
    return parser.parse_args(argv)


def finetune(args: argparse.Namespace, task: str, start: str, seed: int) -> dict:
    argv = [
        "--model_type", "ctal",
        "--model_name_or_path", args.pretrained if start == "pretrained" else args.initial,
        "--lr_scheduler_type", "cosine",
        "--weight_decay", "0.01",
        *sweep_arguments(
            task, seed, args.epochs, args.batch_size, args.learning_rate, args.corpus_preset, args.corpus_dir
        ),
    ]  # fmt: skip
    return cached_finetune(Path(args.output_dir) / task / start / f"seed-{seed}", argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    recorder = Recorder(args.name)
    for task in args.tasks:
        keys = TASK_METRICS[task]
        for start in ("pretrained", "initial"):
            rows = []
            for seed in args.seeds:
                result = finetune(args, task, start, seed)
                rows.append(result)
                recorder.record(
                    kind="run",
                    task=task,
                    start=start,
                    seed=seed,
                    train_size=result["train_size"],
                    test_size=result["test_size"],
                    **{key: result[key] for key in keys if key in result},
                )
            recorder.record(
                kind="summary",
                task=task,
                start=start,
                seeds=args.seeds,
                epochs=args.epochs,
                model=args.pretrained if start == "pretrained" else args.initial,
                **mean_and_std(rows, keys),
            )


if __name__ == "__main__":
    main()
