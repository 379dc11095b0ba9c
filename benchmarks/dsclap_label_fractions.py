#!/usr/bin/env python
"""DSCLAP's Fig. 2 on the embedded corpus: fine-tuning with vs without DSCLAP pre-training at a fraction of the labels.

For every task (default: directed, intent), fraction of the training labels (default: 10%, 25%, 50%, 100%), start
(`pretrained`: a DSCLAP folder after pre-training; `initial`: the same encoders before it, as written by
`run_pretrain.py --save_initial_model`) and seed, fine-tunes with `run_scripts/run_finetune.py` on a seeded subset of
that many training rows (the same rows for both starts), and evaluates on the whole test split. Writes one JSON line
per run and one per (task, fraction, start) with the mean and sample standard deviation across seeds to
`benchmarks/results/<name>.jsonl`, and the accuracy-over-labels plot (Fig. 2) to `benchmarks/results/<name>_<task>.png`.

Runs whose `finetune_results.json` exists are reused, so an interrupted sweep resumes where it stopped.

    python benchmarks/dsclap_label_fractions.py --pretrained out/dsclap --initial out/dsclap-init \
        --corpus_dir out/corpus-default-seed0 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import RESULTS, Recorder, cached_finetune, mean_and_std, sweep_arguments  # noqa: E402

TASK_METRICS = {
    "directed": ("test_accuracy", "test_frr", "test_eer"),
    "intent": ("test_accuracy", "test_macro_f1"),
}
STARTS = ("pretrained", "initial")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pretrained", default="out/dsclap", help="a DSCLAP folder after pre-training")
    parser.add_argument("--initial", default="out/dsclap-init", help="the same encoders before pre-training")
    parser.add_argument("--tasks", nargs="+", default=list(TASK_METRICS), choices=list(TASK_METRICS))
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.1, 0.25, 0.5, 1.0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--output_dir", default="out/dsclap-label-fractions")
    parser.add_argument(
        "--corpus_dir", default=None, help="a built corpus folder (default: the corpus cache)"
    )
    parser.add_argument("--corpus_preset", default="default")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=1e-3, help="heads and audio tower")
    parser.add_argument("--audio_encoder_learning_rate", type=float, default=None)
    parser.add_argument("--text_encoder_learning_rate", type=float, default=2e-5)
    parser.add_argument(
        "--freeze_audio_encoder", action="store_true", help="fine-tune with the audio tower frozen (cheaper)"
    )
    parser.add_argument("--name", default="dsclap_label_fractions", help="results file name")
    return parser.parse_args(argv)


def train_rows(args: argparse.Namespace, task: str) -> int:
    """How many training rows the task has (intent keeps the device-directed rows only)."""
    from audiolang.training import load_splits, task_dataset

    splits = load_splits(None, args.corpus_preset, args.corpus_dir, 0)
    return task_dataset(splits["train"], task)[0].num_rows


def finetune(args: argparse.Namespace, task: str, size: int, total: int, start: str, seed: int) -> dict:
    argv = [
        "--model_type", "dsclap",
        "--model_name_or_path", args.pretrained if start == "pretrained" else args.initial,
        "--text_source", "asr",
        "--text_encoder_learning_rate", str(args.text_encoder_learning_rate),
        *sweep_arguments(
            task, seed, args.epochs, args.batch_size, args.learning_rate, args.corpus_preset, args.corpus_dir
        ),
    ]  # fmt: skip
    if args.audio_encoder_learning_rate is not None:
        argv += ["--audio_encoder_learning_rate", str(args.audio_encoder_learning_rate)]
    if args.freeze_audio_encoder:
        argv += ["--freeze_audio_encoder", "true"]
    if size < total:
        argv += ["--train_size", str(size)]
    return cached_finetune(Path(args.output_dir) / task / f"rows-{size}" / start / f"seed-{seed}", argv)


def plot(results: Path, task: str, metric: str = "test_accuracy") -> Path:
    """Fig. 2: mean ± std of `metric` over seeds against the number of training labels, one line per start."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    summaries = [r for r in rows if r.get("kind") == "summary" and r["task"] == task and metric in r]
    figure, axis = plt.subplots(figsize=(5, 3.5))
    for start, label in (("pretrained", "DSCLAP pre-trained"), ("initial", "no pre-training")):
        points = sorted(
            (r["train_size"], r[metric], r[f"{metric}_std"]) for r in summaries if r["start"] == start
        )
        if points:
            x, y, err = zip(*points, strict=True)
            axis.errorbar(x, y, yerr=err, marker="o", capsize=3, label=label)
    axis.set_xlabel("training labels")
    axis.set_ylabel(metric.removeprefix("test_"))
    axis.set_title(f"{task}: fine-tuning with a fraction of the labels")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    path = results.with_name(f"{results.stem}_{task}.png")
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    recorder = Recorder(args.name)
    for task in args.tasks:
        keys = TASK_METRICS[task]
        total = train_rows(args, task)
        for fraction in args.fractions:
            if not 0 < fraction <= 1:
                raise ValueError(f"--fractions must lie in (0, 1], got {fraction}")
            size = max(1, round(fraction * total))
            for start in STARTS:
                rows = []
                for seed in args.seeds:
                    result = finetune(args, task, size, total, start, seed)
                    rows.append(result)
                    recorder.record(
                        kind="run", task=task, fraction=fraction, train_size=size, start=start, seed=seed,
                        **{key: result[key] for key in keys if key in result},
                    )  # fmt: skip
                recorder.record(
                    kind="summary", task=task, fraction=fraction, train_size=size, start=start, seeds=args.seeds,
                    epochs=args.epochs, model=args.pretrained if start == "pretrained" else args.initial,
                    **mean_and_std(rows, keys),
                )  # fmt: skip
        print(f"wrote {plot(recorder.path, task)}", file=sys.stderr)
    print(f"results in {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
