#!/usr/bin/env python
"""The fine-tuning recipe's search, on the validation split only: which learning rates (and how many epochs) give the
best validation score of a DSCLAP classifier, over several seeds. The test split is never read here
(`run_finetune.py --evaluate_test false`); the chosen setting becomes the default of `run_finetune.py` and of
`make demo`, and `benchmarks/finetune_baselines.py` then reads the test split once.

Every setting runs `run_scripts/run_finetune.py` with the default recipe (validation every epoch, the best
checkpoint kept, early stopping) apart from the searched values: the text tower's learning rate
(`--text_encoder_learning_rates`) and the new layers' (`--learning_rates`). The old recipe (3 epochs, no best
checkpoint, text tower at 2e-5) runs beside it as the reference (`--reference`).

Writes one JSON line per run and one per (task, setting) with the mean and sample standard deviation across seeds to
`benchmarks/results/<name>.jsonl`, and the table to `benchmarks/results/<name>.md`. One recipe for every task
(`choose_setting`): among the settings whose validation score averaged over the tasks is within the seed noise of the
highest average (the best setting's seed standard deviation, averaged over the tasks), the one that reaches its best
checkpoint in the fewest epochs, i.e. the cheapest of the settings the search cannot tell apart. Finished runs are
reused.

    python benchmarks/finetune_recipe.py --pretrained out/dsclap --corpus_dir out/corpus-default-seed0 \
        --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import RESULTS, Recorder, cached_finetune, mean_and_std  # noqa: E402

# What the search maximises per task (the default recipe's `metric_for_best_model`).
VALIDATION_METRIC = {"directed": "eval_accuracy", "intent": "eval_accuracy", "emotion": "eval_ua"}
# The recipe before this search (run_demo.py until then): 3 epochs, the text tower at 2e-5, the last model kept.
REFERENCE = {
    "name": "old recipe (3 epochs, last model)",
    "argv": ["--num_train_epochs", "3", "--load_best_model_at_end", "false", "--save_strategy", "no"],
    "text_encoder_learning_rate": 2e-5,
    "learning_rate": 1e-3,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pretrained", default="out/dsclap", help="the DSCLAP folder to fine-tune")
    parser.add_argument("--corpus_dir", default="out/corpus-default-seed0")
    parser.add_argument("--tasks", nargs="+", default=["intent", "directed"], choices=list(VALIDATION_METRIC))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--text_encoder_learning_rates", nargs="+", type=float, default=[2e-5, 5e-5, 1e-4])
    parser.add_argument("--learning_rates", nargs="+", type=float, default=[1e-3])
    parser.add_argument("--num_train_epochs", type=float, default=15.0)
    parser.add_argument("--early_stopping_patience", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--reference", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--output_dir", default="out/finetune-recipe")
    parser.add_argument("--name", default="finetune_recipe", help="results file name")
    return parser.parse_args(argv)


def settings(args: argparse.Namespace) -> list[dict]:
    grid = [
        {
            "name": f"text {text_rate:g}, head {rate:g}",
            "argv": [
                "--num_train_epochs",
                str(args.num_train_epochs),
                "--early_stopping_patience",
                str(args.early_stopping_patience),
            ],
            "text_encoder_learning_rate": text_rate,
            "learning_rate": rate,
        }  # fmt: skip
        for text_rate, rate in itertools.product(args.text_encoder_learning_rates, args.learning_rates)
    ]
    return ([REFERENCE] if args.reference else []) + grid


def run_argv(args: argparse.Namespace, task: str, seed: int, setting: dict) -> list[str]:
    return [
        "--model_name_or_path", args.pretrained,
        "--dataset_path", args.corpus_dir,
        "--task", task,
        "--text_source", "asr",
        "--freeze_audio_encoder", "true",
        "--evaluate_test", "false",
        "--save_model", "false",
        "--seed", str(seed),
        "--learning_rate", str(setting["learning_rate"]),
        "--text_encoder_learning_rate", str(setting["text_encoder_learning_rate"]),
        "--per_device_train_batch_size", str(args.batch_size),
        "--per_device_eval_batch_size", str(args.batch_size),
        "--train_sampling_strategy", "group_by_length",
        "--dataloader_num_workers", "0",
        "--disable_tqdm", "true",
        "--save_total_limit", "1",
        *setting["argv"],
    ]  # fmt: skip


def commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()


def markdown(summaries: list[dict], command: str, revision: str) -> str:
    lines = [
        f"Validation split only (the test split is not read). Command: `{command}`, commit {revision}.",
        "",
        "Chosen (`choose_setting`): among the settings whose mean over the tasks is within the seed noise of the "
        "highest (its seed std averaged over the tasks), the one with the fewest epochs to the best checkpoint.",
        "",
        "| task | setting | validation metric | mean ± std | seeds | epochs to the best (mean) | mean over tasks "
        "| chosen |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in summaries:
        average = "-" if row["average_over_tasks"] is None else f"{row['average_over_tasks']:.4f}"
        lines.append(
            f"| {row['task']} | {row['setting']} | {row['metric']} | {row['mean']:.4f} ± {row['std']:.4f} | "
            f"{row['seeds']} | {row['best_epoch_mean']:.1f} | {average} | {'**yes**' if row['chosen'] else ''} |"
        )
    return "\n".join(lines) + "\n"


def choose_setting(rows: list[dict]) -> tuple[str, dict[str, float]]:
    """The recipe for every task, from per-(task, setting) summaries (`mean`, `std`, `best_epoch_mean`): among the
    settings whose mean over the tasks is within the seed noise of the highest mean (the seed std of that best
    setting, averaged over the tasks), the one with the fewest epochs to its best checkpoint summed over the tasks
    (then the higher mean). Returns the chosen setting and every setting's mean over the tasks."""
    by_setting: dict[str, list[dict]] = {}
    for row in rows:
        by_setting.setdefault(row["setting"], []).append(row)
    average = {setting: sum(r["mean"] for r in group) / len(group) for setting, group in by_setting.items()}
    top = max(average, key=average.get)
    noise = sum(r["std"] for r in by_setting[top]) / len(by_setting[top])
    tied = [setting for setting in average if average[setting] >= average[top] - noise]
    epochs = {setting: sum(r["best_epoch_mean"] for r in by_setting[setting]) for setting in tied}
    return min(tied, key=lambda setting: (epochs[setting], -average[setting])), average


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    recorder = Recorder(args.name)
    revision = commit()
    summaries = []
    for task in args.tasks:
        metric = VALIDATION_METRIC[task]
        task_rows = []
        for setting in settings(args):
            runs = []
            for seed in args.seeds:
                slug = setting["name"].replace(" ", "").replace(",", "_").replace("(", "").replace(")", "")
                folder = Path(args.output_dir) / task / slug / f"seed{seed}"
                result = cached_finetune(folder, run_argv(args, task, seed, setting))
                run = {
                    "task": task,
                    "setting": setting["name"],
                    "seed": seed,
                    "metric": metric,
                    "value": result[metric],
                    "best_epoch": result.get("best_epoch") or result.get("epochs_trained"),
                    "epochs_trained": result.get("epochs_trained"),
                    "train_runtime": result.get("train_runtime"),
                    "commit": revision,
                }
                runs.append(recorder.record(kind="run", **run))
            stats = mean_and_std(runs, ["value", "best_epoch"])
            task_rows.append(
                {
                    "task": task,
                    "setting": setting["name"],
                    "metric": metric,
                    "mean": stats["value"],
                    "std": stats["value_std"],
                    "seeds": len(runs),
                    "best_epoch_mean": stats["best_epoch"],
                    "text_encoder_learning_rate": setting["text_encoder_learning_rate"],
                    "learning_rate": setting["learning_rate"],
                }
            )
        summaries.extend(task_rows)
    searched = [row for row in summaries if row["setting"] != REFERENCE["name"]]
    best, average = choose_setting(searched)
    summaries = [
        recorder.record(
            kind="summary",
            commit=revision,
            **row,
            average_over_tasks=average.get(row["setting"]),
            chosen=row["setting"] == best,
        )
        for row in summaries
    ]
    command = "python benchmarks/finetune_recipe.py " + " ".join(sys.argv[1:] if argv is None else argv)
    (RESULTS / f"{args.name}.md").write_text(markdown(summaries, command, revision))
    print(json.dumps({"chosen": best, "average_over_tasks": average[best]}))
    return summaries


if __name__ == "__main__":
    main()
