#!/usr/bin/env python
"""Every fine-tuned score beside the simplest baselines, on the same splits, transcripts and seeds.

For each task and seed, with `run_finetune.py`'s default recipe:

- `DSCLAP pre-trained`: the classifier on both towers of the pre-trained DSCLAP folder;
- `no pre-training`: the same encoders before pre-training (`run_pretrain.py --save_initial_model`);
- `text tower alone` / `audio tower alone`: the pre-trained folder's text or audio tower alone
  (`--config_overrides classifier_inputs=text|audio`), the neural single-modality baselines;
- `TF-IDF + logistic regression`: word 1-2 and character 3-5 grams of the same ASR transcripts
  (`audiolang.baselines.tfidf_task_metrics`), the ten-line baseline a user would write first.

Each model is scored on `--test_split` and on every split of `--extra_test_splits` that the corpus has (e.g.
`test_natural`, the natural-voice test split) with `run_evaluate.py`. `--train_fractions` repeats the two DSCLAP starts
on seeded fractions of the training labels (DSCLAP's Fig. 2). Writes one JSON line per run and one per (task, split,
arm, fraction) with the mean and sample standard deviation across seeds to `benchmarks/results/<name>.jsonl`, and
the tables to `benchmarks/results/<name>.md`. Finished runs are reused (an interrupted sweep resumes).

    python benchmarks/finetune_baselines.py --pretrained out/dsclap --initial out/dsclap-init \
        --corpus_dir out/corpus-default-seed0 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import RESULTS, Recorder, cached_finetune, cached_run, mean_and_std  # noqa: E402

TASK_METRICS = {
    "directed": ("accuracy", "frr", "eer"),
    "intent": ("accuracy", "macro_f1"),
    "emotion": ("ua", "wa"),
}
# arm -> (start, classifier_inputs)
ARMS = {
    "DSCLAP pre-trained": ("pretrained", "audio_text"),
    "no pre-training": ("initial", "audio_text"),
    "text tower alone": ("pretrained", "text"),
    "audio tower alone": ("pretrained", "audio"),
}
TFIDF = "TF-IDF + logistic regression (text only)"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pretrained", default="out/dsclap")
    parser.add_argument("--initial", default="out/dsclap-init")
    parser.add_argument("--corpus_dir", default="out/corpus-default-seed0")
    parser.add_argument("--tasks", nargs="+", default=["intent", "directed"], choices=list(TASK_METRICS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--arms", nargs="+", default=[*ARMS, TFIDF], choices=[*ARMS, TFIDF])
    parser.add_argument("--test_split", default="test")
    parser.add_argument("--extra_test_splits", nargs="*", default=["test_natural"])
    parser.add_argument(
        "--train_fractions",
        nargs="+",
        type=float,
        default=[1.0],
        help="fractions of the training labels for the two DSCLAP starts (the other arms use all)",
    )
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--output_dir", default="out/finetune-baselines")
    parser.add_argument("--name", default="finetune_baselines", help="results file name")
    return parser.parse_args(argv)


def commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()


def common_argv(args: argparse.Namespace, task: str, seed: int) -> list[str]:
    return [
        "--dataset_path", args.corpus_dir,
        "--task", task,
        "--text_source", "asr",
        "--seed", str(seed),
        "--per_device_train_batch_size", str(args.batch_size),
        "--per_device_eval_batch_size", str(args.batch_size),
        "--dataloader_num_workers", "0",
        "--disable_tqdm", "true",
        "--train_sampling_strategy", "group_by_length",
    ]  # fmt: skip


def train_rows(args: argparse.Namespace, task: str) -> int:
    from audiolang.training import DatasetArguments, load_labelled_splits, resolve_task

    splits, _, _ = load_labelled_splits(
        DatasetArguments(dataset_path=args.corpus_dir), resolve_task(task, None, None), ("train",), 16_000, 0
    )
    return splits["train"].num_rows


def finetune_arm(args, task: str, seed: int, arm: str, fraction: float, rows: int) -> dict[str, dict]:
    """`{split: test metrics}` of one fine-tuned arm."""
    start, inputs = ARMS[arm]
    folder = Path(args.output_dir) / task / f"{start}-{inputs}-{fraction:g}" / f"seed{seed}"
    argv = [
        "--model_name_or_path", args.pretrained if start == "pretrained" else args.initial,
        *common_argv(args, task, seed),
        "--freeze_audio_encoder", "true",
        "--config_overrides", f"classifier_inputs={inputs}",
        "--test_split_name", args.test_split,
    ]  # fmt: skip
    if fraction < 1.0:
        argv += ["--train_size", str(max(1, round(fraction * rows)))]
    result = cached_finetune(folder, argv)
    scores = {args.test_split: result}
    for split in available_extra_splits(args):
        scores[split] = cached_run(
            "run_evaluate.py",
            "all_results.json",
            folder / f"eval-{split}",
            [
                "--model_name_or_path", str(folder),
                *common_argv(args, task, seed),
                "--split", split,
            ],
        )  # fmt: skip
    return {
        split: {
            name: values[f"{'test' if split == args.test_split else split}_{name}"]
            for name in TASK_METRICS[task]
            if f"{'test' if split == args.test_split else split}_{name}" in values
        }
        for split, values in scores.items()
    } | {"_epochs": {"best_epoch": result.get("best_epoch"), "epochs_trained": result.get("epochs_trained")}}


def available_extra_splits(args: argparse.Namespace) -> list[str]:
    from datasets import load_from_disk

    have = set(load_from_disk(args.corpus_dir).keys())
    return [split for split in args.extra_test_splits if split in have]


def tfidf_arm(args, task: str, seed: int) -> dict[str, dict]:
    from audiolang.baselines import tfidf_split_metrics
    from audiolang.training import DatasetArguments

    scores = tfidf_split_metrics(
        DatasetArguments(dataset_path=args.corpus_dir),
        (args.test_split, *available_extra_splits(args)),
        task,
        seed=seed,
    )
    return {
        split: {name.removeprefix("test_"): value for name, value in metrics.items()}
        for split, metrics in scores.items()
    }


def markdown(summaries: list[dict], command: str, revision: str) -> str:
    lines = [
        f"Command: `{command}`, commit {revision}. Mean ± sample std over seeds; the same splits, ASR transcripts "
        "and seeds for every row.",
        "",
    ]
    for (task, split, fraction), rows in group(summaries).items():
        metrics = TASK_METRICS[task]
        lines += [
            f"### {task}, {split} split, {fraction:.0%} of the training labels",
            "",
            "| model | " + " | ".join(metrics) + " | seeds |",
            "|---|" + "---|" * (len(metrics) + 1),
        ]
        for row in rows:
            cells = [f"{row[m]:.3f} ± {row[m + '_std']:.3f}" if m in row else "-" for m in metrics]
            lines.append(f"| {row['arm']} | " + " | ".join(cells) + f" | {row['seeds']} |")
        lines.append("")
    return "\n".join(lines)


def group(summaries: list[dict]) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for row in summaries:
        groups.setdefault((row["task"], row["split"], row["fraction"]), []).append(row)
    return groups


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    recorder = Recorder(args.name)
    revision = commit()
    summaries = []
    for task in args.tasks:
        rows = train_rows(args, task)
        plan = [
            (arm, fraction)
            for arm in args.arms
            for fraction in (args.train_fractions if ARMS.get(arm, ("", ""))[1] == "audio_text" else [1.0])
        ]
        for arm, fraction in plan:
            per_split: dict[str, list[dict]] = {}
            for seed in args.seeds:
                if arm == TFIDF:
                    scores = tfidf_arm(args, task, seed)
                else:
                    scores = finetune_arm(args, task, seed, arm, fraction, rows)
                epochs = scores.pop("_epochs", {})
                for split, metrics in scores.items():
                    run = {"task": task, "split": split, "arm": arm, "fraction": fraction, "seed": seed}
                    per_split.setdefault(split, []).append(
                        recorder.record(kind="run", commit=revision, **run, **metrics, **epochs)
                    )
            for split, runs in per_split.items():
                stats = mean_and_std(runs, TASK_METRICS[task])
                summaries.append(
                    recorder.record(
                        kind="summary",
                        commit=revision,
                        task=task,
                        split=split,
                        arm=arm,
                        fraction=fraction,
                        seeds=len(runs),
                        **stats,
                    )
                )
    command = "python benchmarks/finetune_baselines.py " + " ".join(sys.argv[1:] if argv is None else argv)
    (RESULTS / f"{args.name}.md").write_text(markdown(summaries, command, revision))
    print(json.dumps({"written": str(RESULTS / f"{args.name}.md")}))
    return summaries


if __name__ == "__main__":
    main()
