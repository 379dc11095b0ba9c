#!/usr/bin/env python
"""Why does CTAL pre-training hurt the acoustic tasks on the embedded corpus? The evidence, as one resumable sweep
(issue 13; the paper's Table 4 is the claim to check: pre-training > none, and MLM and MCAM each needed).

Pre-training arms (`run_pretrain.py --model_type ctal`, each at every `--seeds`, README's recipe otherwise):

- `both`: MLM + MCAM on per-utterance-normalised features, `--epochs` epochs, a checkpoint per epoch (the short end
  of the probe-over-steps curve); its model before pre-training is the `initial` start;
- `mlm-only`, `mcam-only`: one objective off (`--config_overrides mcam_weight=0` / `mlm_weight=0`; its input is not
  masked either), Table 4's rows (c) and (b);
- `no-norm`: both objectives on features without per-utterance normalisation (`--do_normalize false`), which keeps
  each clip's level and average spectrum; its model before pre-training is the `initial-no-norm` start;
- `long`: `both` for `--long_epochs` epochs with a checkpoint per epoch: the probe-over-steps curve;
- `data-<fraction>`: `both` on the first `--data_fractions` of the pre-training split (pre-training data size);
- `large-corpus`: `both` on the `pretrain` split of `--large_corpus_dir` (a `run_build_corpus.py --preset large`
  build). Its voices include the default corpus' unseen `speaker_test` voices (heard, unlabelled, in
  pre-training): read its speaker-verification numbers with that in mind.

Every model (the starts before pre-training, every arm's final model, every checkpoint of `both` and `long`) is
probed (`audiolang.probing`: linear probes of the frozen pooled text, audio and fusion states on `--probe_tasks`,
fitted on `train` and scored on `test` of the default corpus; unseen-speaker EER on `speaker_test`), and so are
log-mel statistics (no model). Fine-tuning (`run_finetune.py --model_type ctal`, 3 epochs, batch 32, cosine, as
`ctal_tasks.py`) runs every start on `--finetune_tasks` at `--learning_rate` (the ablation table), and the
`initial` and `both` starts also at each of `--finetune_learning_rates` (whole model) and with each of
`--encoder_learning_rates` for the pre-trained encoder while the new pooling and classifier layers keep
`--learning_rate` (does fine-tuning erase what pre-training put there?).

One JSON line per finished pre-training, probe and fine-tuning run goes to `benchmarks/results/<name>.jsonl`; a run
whose line is there is skipped, and run folders under `--output_dir` are reused (a killed pre-training resumes from
its last checkpoint), so re-running the command continues the sweep. At the end: `<name>.md` (probe table, Table 4
ablation, learning rates) and `<name>_steps.png` (probe metric of each task against pre-training steps). The
estimated time is printed first (`--estimate_only` prints it and stops).

    python benchmarks/ctal_investigation.py --corpus_dir out/corpus-default-seed0 --seeds 0 1 2
    python benchmarks/ctal_investigation.py --corpus_dir out/corpus-default-seed0 --quick   # fewer arms and tasks
    # the smallest check (tiny corpus and model, one seed, ~3 min)
    python benchmarks/ctal_investigation.py --corpus_preset tiny --preset tiny --seeds 0 --epochs 1 \
        --long_epochs 2 --data_fractions --probe_tasks emotion speaker_verification --finetune_tasks emotion \
        --finetune_starts initial both --finetune_learning_rates 1e-3 --encoder_learning_rates \
        --name ctal_investigation_smoke --output_dir out/ctal-investigation-smoke
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    RESULTS,
    Results,
    cached_run,
    mean_and_std,
    pretrain_sweep_arguments,
    sweep_arguments,
)
from ctal_tasks import TASK_METRICS  # noqa: E402
from linear_probe import HEADLINE, markdown_table, probe_model, summaries  # noqa: E402

from audiolang.probing import LOG_MEL_STREAM, PROBE_TASKS  # noqa: E402

# Arms that keep a checkpoint per epoch: their probe-over-steps curves.
CURVE_ARMS = ("both", "long")
# What `--quick` changes (explicit flags still win): the README's 4 pre-training epochs, the curve from `both`'s
# four checkpoints instead of a long run, no data-size arms, the two tasks pre-training hurt most, and one rate of
# each kind besides the reference.
QUICK = {
    "long_epochs": 0,
    "data_fractions": [],
    "finetune_starts": ["initial", "both", "initial-no-norm", "no-norm"],
    "finetune_tasks": ["emotion", "speaker"],
    "finetune_learning_rates": [5e-5],
    "encoder_learning_rates": [2e-5],
}
# Rough CPU cost of one row on one thread of the 2-core development machine, for the `small` preset (measured:
# 4 pre-training epochs of 2,600 clips in 20 min; probing 1,440 clips in about 70 s); other presets scale with
# N * H^2 on top of the per-row feature extraction. Fine-tuning a row costs about what pre-training it does.
SECONDS_PER_TRAINED_ROW = 0.115
SECONDS_PER_EMBEDDED_ROW = 0.05
SECONDS_PER_ROW_OVERHEAD = 0.01


@dataclass(frozen=True)
class Start:
    """A model that is probed and fine-tuned: an arm's final model, or a model before pre-training."""

    name: str
    folder: Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help=f"reduced sweep: {QUICK}")
    parser.add_argument("--estimate_only", action="store_true", help="print the time estimate and stop")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--preset", default="small", help="CTAL architecture preset")
    parser.add_argument("--corpus_preset", default="default")
    parser.add_argument(
        "--corpus_dir", default=None, help="a built corpus folder (default: the corpus cache)"
    )
    parser.add_argument(
        "--large_corpus_dir",
        default=None,
        help="a larger build for the `large-corpus` arm (none: no such arm)",
    )
    parser.add_argument(
        "--epochs", type=float, default=4.0, help="pre-training epochs of every arm but `long`"
    )
    parser.add_argument(
        "--long_epochs", type=int, default=16, help="pre-training epochs of `long` (0: no `long` arm)"
    )
    parser.add_argument(
        "--data_fractions", nargs="*", type=float, default=[0.25, 0.5], help="pre-training data of `data-*`"
    )
    parser.add_argument("--pretrain_batch_size", type=int, default=32)
    parser.add_argument("--pretrain_learning_rate", type=float, default=5e-4)
    parser.add_argument(
        "--probe_tasks",
        nargs="+",
        default=[
            task for task in PROBE_TASKS if task != "spread"
        ],  # `linear_probe.py --tasks spread` measures it
        choices=list(PROBE_TASKS),
    )
    parser.add_argument("--finetune_tasks", nargs="*", default=list(TASK_METRICS), choices=list(TASK_METRICS))
    parser.add_argument(
        "--finetune_starts", nargs="*", default=None, help="starts to fine-tune (default: every start)"
    )
    parser.add_argument("--epochs_finetune", type=float, default=3.0)
    parser.add_argument("--batch_size", type=int, default=32, help="fine-tuning batch size")
    parser.add_argument(
        "--learning_rate",
        type=float,
        default=2e-4,
        help="reference fine-tuning rate (README), and the head's",
    )
    parser.add_argument(
        "--finetune_learning_rates", nargs="*", type=float, default=[5e-5, 1e-3], help="whole-model rates"
    )
    parser.add_argument(
        "--encoder_learning_rates", nargs="*", type=float, default=[2e-5], help="rates of the encoder alone"
    )
    parser.add_argument("--output_dir", default="out/ctal-investigation")
    parser.add_argument("--name", default="ctal_investigation", help="results file name")
    first, _ = parser.parse_known_args(argv)
    if first.quick:
        parser.set_defaults(**QUICK)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.finetune_starts or ()) - {s.name for s in starts(args, seed=0)})
    if unknown:
        parser.error(
            f"--finetune_starts: no start named {unknown}; the starts are {[s.name for s in starts(args, 0)]}"
        )
    return args


# --- pre-training ----------------------------------------------------------------------------------------------------


def arm_names(args: argparse.Namespace) -> list[str]:
    """The pre-training arms of this sweep, in table order."""
    names = ["both", "mlm-only", "mcam-only", "no-norm"] + (["long"] if args.long_epochs else [])
    names += [f"data-{fraction:g}" for fraction in args.data_fractions]
    return names + (["large-corpus"] if args.large_corpus_dir else [])


def pretrain_arms(args: argparse.Namespace) -> dict[str, list[str]]:
    """Arm name -> its own `run_pretrain.py` arguments (they come last: argparse keeps the last value)."""
    arms: dict[str, list[str]] = {
        "both": [],
        "mlm-only": ["--config_overrides", "mcam_weight=0"],
        "mcam-only": ["--config_overrides", "mlm_weight=0"],
        "no-norm": ["--do_normalize", "false"],
        "long": ["--num_train_epochs", str(args.long_epochs)],
        "large-corpus": ["--dataset_path", str(args.large_corpus_dir)],
    }
    for fraction in args.data_fractions:
        arms[f"data-{fraction:g}"] = ["--max_train_samples", str(math.ceil(fraction * pretrain_rows(args)))]
    return {name: arms[name] for name in arm_names(args)}


def initial_folder(args: argparse.Namespace, arm: str, seed: int) -> Path | None:
    """Where an arm saves its model before pre-training: `both` (the `initial` start) and `no-norm`."""
    names = {"both": "initial", "no-norm": "initial-no-norm"}
    return Path(args.output_dir) / names[arm] / f"seed-{seed}" if arm in names else None


def pretrain_argv(args: argparse.Namespace, arm: str, seed: int) -> list[str]:
    argv = [
        "--model_type", "ctal",
        "--preset", args.preset,
        "--corpus_preset", args.corpus_preset,
        "--num_train_epochs", str(args.epochs),
        "--weight_decay", "0.01",
        "--train_sampling_strategy", "group_by_length",
        *pretrain_sweep_arguments(seed, args.pretrain_batch_size, args.pretrain_learning_rate),
    ]  # fmt: skip
    if arm not in CURVE_ARMS:
        argv += ["--save_total_limit", "1"]  # only for resuming
    if args.corpus_dir:
        argv += ["--corpus_dir", args.corpus_dir]
    initial = initial_folder(args, arm, seed)
    if initial is not None:
        argv += ["--save_initial_model", str(initial)]
    return argv + pretrain_arms(args)[arm]


def pretrain(args: argparse.Namespace, results: Results, arm: str, seed: int) -> Path:
    folder = Path(args.output_dir) / "pretrain" / arm / f"seed-{seed}"
    if results.find(kind="pretrain", arm=arm, seed=seed) is None:
        result = cached_run(
            "run_pretrain.py", "pretrain_results.json", folder, pretrain_argv(args, arm, seed)
        )
        results.add(kind="pretrain", arm=arm, seed=seed, **result)
    return folder


# --- probing ---------------------------------------------------------------------------------------------------------


def checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """`(global step, folder)` of every `checkpoint-N` of a pre-training run, in step order."""
    found = [(int(path.name.split("-")[1]), path) for path in folder.glob("checkpoint-*") if path.is_dir()]
    return sorted(found)


def final_step(folder: Path) -> int:
    return json.loads((folder / "trainer_state.json").read_text())["global_step"]


def probe(
    args: argparse.Namespace, results: Results, splits, model: str, seed: int, step: int, folder
) -> None:
    """Probe one model (`folder` None: log-mel statistics) unless its line is there."""
    if results.find(kind="probe", model=model, seed=seed, step=step) is not None:
        return
    started = time.perf_counter()
    records = probe_model(
        None if folder is None else str(folder), splits, args.probe_tasks, seed, "asr_text", 32
    )
    results.add(
        kind="probe",
        model=model,
        seed=seed,
        step=step,
        folder=None if folder is None else str(folder),
        seconds=round(time.perf_counter() - started, 1),
        records=records,
    )


# --- fine-tuning -----------------------------------------------------------------------------------------------------


def finetune(
    args: argparse.Namespace,
    results: Results,
    start: Start,
    task: str,
    seed: int,
    learning_rate: float,
    encoder_learning_rate: float | None = None,
) -> None:
    key = {"start": start.name, "task": task, "seed": seed, "learning_rate": learning_rate}
    key["encoder_learning_rate"] = encoder_learning_rate
    if results.find(kind="finetune", **key) is not None:
        return
    setting = f"lr-{learning_rate:g}" + (
        "" if encoder_learning_rate is None else f"-encoder-{encoder_learning_rate:g}"
    )
    argv = [
        "--model_type", "ctal",
        "--model_name_or_path", str(start.folder),
        "--lr_scheduler_type", "cosine",
        "--weight_decay", "0.01",
        *sweep_arguments(
            task, seed, args.epochs_finetune, args.batch_size, learning_rate, args.corpus_preset, args.corpus_dir
        ),
    ]  # fmt: skip
    if encoder_learning_rate is not None:
        argv += ["--encoder_learning_rate", str(encoder_learning_rate)]
    folder = Path(args.output_dir) / "finetune" / start.name / task / setting / f"seed-{seed}"
    result = cached_run("run_finetune.py", "finetune_results.json", folder, argv)
    metrics = {k: result[k] for k in TASK_METRICS[task] if k in result}
    results.add(kind="finetune", **key, train_size=result["train_size"], **metrics)


def learning_rate_settings(args: argparse.Namespace) -> list[tuple[float, float | None]]:
    """(head and default rate, encoder rate or None) of the learning-rate arm, the reference first."""
    settings = [(args.learning_rate, None)]
    settings += [(rate, None) for rate in args.finetune_learning_rates if rate != args.learning_rate]
    return settings + [(args.learning_rate, rate) for rate in args.encoder_learning_rates]


# --- the time estimate -----------------------------------------------------------------------------------------------


def pretrain_rows(args: argparse.Namespace) -> int:
    return _pretrain_rows(args.corpus_preset, args.corpus_dir)


@functools.cache
def _pretrain_rows(corpus_preset: str, corpus_dir: str | None) -> int:
    from audiolang.training import load_splits

    return load_splits(None, corpus_preset, corpus_dir)["pretrain"].num_rows


def seconds_per_row(preset: str, per_row: float) -> float:
    """`per_row` (measured for `small`) scaled to `preset` by N * H^2, plus the per-row feature extraction."""
    from audiolang import CTAL_PRESETS

    def size(name: str) -> int:
        return CTAL_PRESETS[name]["num_hidden_layers"] * CTAL_PRESETS[name]["hidden_size"] ** 2

    return SECONDS_PER_ROW_OVERHEAD + (per_row - SECONDS_PER_ROW_OVERHEAD) * size(preset) / size("small")


def estimate_seconds(args: argparse.Namespace) -> dict[str, float]:
    """Seconds of pre-training, probing and fine-tuning of the whole sweep on one thread (finished runs included)."""
    from audiolang.training import load_splits, task_dataset

    splits = load_splits(None, args.corpus_preset, args.corpus_dir)
    train = seconds_per_row(args.preset, SECONDS_PER_TRAINED_ROW)
    embed = seconds_per_row(args.preset, SECONDS_PER_EMBEDDED_ROW)
    rows = splits["pretrain"].num_rows
    epochs = {arm: args.epochs for arm in arm_names(args)}
    if args.long_epochs:
        epochs["long"] = args.long_epochs
    arm_rows = {arm: rows for arm in epochs}
    arm_rows.update({f"data-{f:g}": math.ceil(f * rows) for f in args.data_fractions})
    if args.large_corpus_dir:
        arm_rows["large-corpus"] = load_splits(args.large_corpus_dir)["pretrain"].num_rows
    validation = 2 * splits["validation"].num_rows * embed  # the MLM/MCAM measures before and after
    pretraining = sum(epochs[arm] * arm_rows[arm] * train + validation for arm in epochs)

    probed_rows = sum(splits[name].num_rows for name in ("train", "test", "speaker_test"))
    probed_rows += (
        splits["test"].num_rows if "text_dependence" in args.probe_tasks else 0
    )  # swapped transcripts
    # Every start at its final step, `both` at each of its checkpoints instead, and `long` at each of its own.
    models = len(starts(args, seed=0)) - 1 + math.ceil(args.epochs) + args.long_epochs
    probing = models * probed_rows * embed + probed_rows * SECONDS_PER_ROW_OVERHEAD  # + log-mel statistics

    finetuning = 0.0
    fine_tuned = finetuned_starts(args, seed=0)
    rate_starts = sum(start.name in ("initial", "both") for start in fine_tuned)
    runs_per_task = len(fine_tuned) + rate_starts * (len(learning_rate_settings(args)) - 1)
    for task in args.finetune_tasks:
        task_rows = task_dataset(splits["train"], task)[0].num_rows
        evaluated = (
            splits["validation"].num_rows + splits["speaker_test" if task == "speaker" else "test"].num_rows
        )
        finetuning += runs_per_task * (args.epochs_finetune * task_rows * train + evaluated * embed)
    seeds = len(args.seeds)
    return {"pretraining": seeds * pretraining, "probing": seeds * probing, "finetuning": seeds * finetuning}


def print_estimate(args: argparse.Namespace) -> None:
    parts = estimate_seconds(args)
    total = sum(parts.values())
    detail = ", ".join(f"{name} {seconds / 3600:.1f} h" for name, seconds in parts.items())
    print(
        f"estimated time on one thread of the 2-core development machine: {total / 3600:.1f} h ({detail}); "
        f"finished runs are reused",
        flush=True,
    )


# --- reporting -------------------------------------------------------------------------------------------------------


def starts(args: argparse.Namespace, seed: int) -> list[Start]:
    """Every start that is probed at its final step and fine-tuned at the reference rate, in table order."""
    root = Path(args.output_dir)
    found = [Start("initial", root / "initial" / f"seed-{seed}")]
    found.append(Start("initial-no-norm", root / "initial-no-norm" / f"seed-{seed}"))
    found += [
        Start(arm, root / "pretrain" / arm / f"seed-{seed}") for arm in arm_names(args) if arm != "long"
    ]
    return found


def finetuned_starts(args: argparse.Namespace, seed: int) -> list[Start]:
    """The starts of `--finetune_starts` (all by default)."""
    return [s for s in starts(args, seed) if args.finetune_starts is None or s.name in args.finetune_starts]


def probe_records(results: Results) -> list[dict[str, Any]]:
    """The probe lines flattened: one record per (model, seed, step, stream, task)."""
    return [
        {"model": line["model"], "seed": line["seed"], "step": line["step"], **record}
        for line in results.lines
        if line.get("kind") == "probe"
        for record in line["records"]
    ]


def final_probe_records(results: Results) -> list[dict[str, Any]]:
    """Each model's records at its last probed step (a curve arm's final checkpoint; the other arms' only one)."""
    records = probe_records(results)
    last = {}
    for record in records:
        key = (record["model"], record["seed"])
        last[key] = max(last.get(key, record["step"]), record["step"])
    return [r for r in records if r["step"] == last[(r["model"], r["seed"])]]


def finetune_table(results: Results, rows: list[tuple[str, float, float | None]], tasks: list[str]) -> str:
    """Rows: (start, rate, encoder rate); columns: every task metric, mean ± sample std over seeds."""
    columns = [(task, metric) for task in tasks for metric in TASK_METRICS[task]]
    header = [
        "start",
        "learning rate",
        *(f"{task} {metric.removeprefix('test_')}" for task, metric in columns),
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for start, rate, encoder in rows:
        cells = []
        for task, metric in columns:
            runs = [
                line
                for line in results.lines
                if line.get("kind") == "finetune"
                and (line["start"], line["task"], line["learning_rate"], line["encoder_learning_rate"])
                == (start, task, rate, encoder)
            ]
            summary = mean_and_std(runs, (metric,))
            cells.append(
                f"{summary[metric]:.3f} ± {summary[f'{metric}_std']:.3f}" if metric in summary else "-"
            )
        setting = f"{rate:g}" if encoder is None else f"encoder {encoder:g}, head {rate:g}"
        lines.append("| " + " | ".join([start, setting, *cells]) + " |")
    return "\n".join(lines) + "\n"


def report(args: argparse.Namespace, results: Results) -> str:
    probe_summary = summaries(final_probe_records(results))
    names = [s.name for s in starts(args, seed=0)] + (["long"] if args.long_epochs else []) + [LOG_MEL_STREAM]
    probe_summary.sort(key=lambda row: names.index(row["model"]) if row["model"] in names else len(names))
    fine_tuned = [s.name for s in finetuned_starts(args, seed=0)]
    ablation = [(name, args.learning_rate, None) for name in fine_tuned]
    rates = [
        (s, r, e) for s in ("initial", "both") if s in fine_tuned for r, e in learning_rate_settings(args)
    ]
    parts = [
        f"## Linear probes (train -> test; EER on unseen speakers), seeds {args.seeds}\n",
        markdown_table(probe_summary),
    ]
    if args.finetune_tasks:  # no fine-tuning in this sweep: no empty tables
        parts += [
            f"## Fine-tuning at the reference rate {args.learning_rate:g} (Table 4's rows)\n",
            finetune_table(results, ablation, args.finetune_tasks),
            "## Fine-tuning learning rates: pre-trained (`both`) vs before pre-training (`initial`)\n",
            finetune_table(results, rates, args.finetune_tasks),
        ]
    return "\n".join(parts)


def probe_curve(
    records: list[dict[str, Any]], arm: str, stream: str, task: str
) -> list[tuple[int, float, float]]:
    """`(step, mean, sample std over seeds)` of the task's headline probe metric of one arm's stream at each of its
    checkpoints; step 0 is the model before pre-training (`initial`)."""
    metric = HEADLINE[task]
    by_step: dict[int, list[float]] = {}
    for r in records:
        model_at_step = r["model"] == arm or (r["model"] == "initial" and r["step"] == 0)
        if model_at_step and r["stream"] == stream and r["task"] == task and metric in r:
            by_step.setdefault(r["step"], []).append(r[metric])
    return [
        (step, statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else 0.0)
        for step, v in sorted(by_step.items())
    ]


def plot_probe_curves(results: Results, tasks: list[str], path: Path) -> None:
    """One panel per task: the probe's headline metric of the audio, fusion and text streams against pre-training
    steps (mean ± std over seeds) for each curve arm, and log-mel statistics as a dotted line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = probe_records(results)
    columns = min(3, len(tasks))
    rows = math.ceil(len(tasks) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.6 * rows), squeeze=False)
    for axis, task in zip(axes.flat, tasks, strict=False):
        for arm, style in (("both", "-"), ("long", "--")):
            for stream, colour in (("audio", "tab:blue"), ("fusion", "tab:orange"), ("text", "tab:green")):
                curve = probe_curve(records, arm, stream, task)
                if len(curve) < 2:
                    continue
                steps, means, spreads = (np.array(column) for column in zip(*curve, strict=True))
                axis.plot(steps, means, style, marker="o", color=colour, label=f"{stream} ({arm})")
                axis.fill_between(steps, means - spreads, means + spreads, color=colour, alpha=0.12)
        baseline = [r[HEADLINE[task]] for r in records if r["model"] == LOG_MEL_STREAM and r["task"] == task]
        if baseline:
            axis.axhline(statistics.fmean(baseline), color="grey", linestyle=":", label=LOG_MEL_STREAM)
        axis.set(title=task, xlabel="pre-training steps", ylabel=f"probe {HEADLINE[task]}")
    for axis in list(axes.flat)[len(tasks) :]:
        axis.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    figure.suptitle(
        "CTAL: linear probes of the frozen pooled states during pre-training (mean ± std over seeds)"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


# --- the sweep -------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print_estimate(args)
    if args.estimate_only:
        return
    from audiolang.training import load_splits

    results = Results(RESULTS / f"{args.name}.jsonl")
    splits = load_splits(None, args.corpus_preset, args.corpus_dir)
    for seed in args.seeds:
        probe(args, results, splits, LOG_MEL_STREAM, seed, 0, None)
        # Each arm is probed as soon as it is pre-trained: the cheap evidence comes first.
        for arm in arm_names(args):
            folder = pretrain(args, results, arm, seed)
            initial = initial_folder(args, arm, seed)
            if initial is not None:
                probe(args, results, splits, initial.parent.name, seed, 0, initial)
            models = checkpoints(folder) if arm in CURVE_ARMS else [(final_step(folder), folder)]
            for step, model in models:
                probe(args, results, splits, arm, seed, step, model)
        for task in args.finetune_tasks:
            for start in finetuned_starts(args, seed):
                finetune(args, results, start, task, seed, args.learning_rate)
            for start in (s for s in finetuned_starts(args, seed) if s.name in ("initial", "both")):
                for rate, encoder in learning_rate_settings(args)[1:]:
                    finetune(args, results, start, task, seed, rate, encoder)
    (RESULTS / f"{args.name}.md").write_text(report(args, results))
    plot_probe_curves(results, args.probe_tasks, RESULTS / f"{args.name}_steps.png")
    print((RESULTS / f"{args.name}.md").read_text())


if __name__ == "__main__":
    main()
