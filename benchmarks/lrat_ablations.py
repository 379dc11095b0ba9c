#!/usr/bin/env python
"""lrat's ablations (Kang et al., AAAI 2022, Table 4) on the embedded corpus, and the translation quality of every
IDP iteration (the paper's central claim: the pseudo-parallel data gets less noisy iteration by iteration).

Rows (those of Table 4 that need no other model family):

- `w/o pre-training`: fine-tuned from the `ours` model as initialised, before pre-training;
- `w/o IDAE`, `w/o IDP` (every IDP round re-translates from the all-mask input, as back-translation does),
  `w/o paired data` (no pairs, so no warm-up: the first translation comes from the untrained model), `ours`;
- `fully paired`: every pre-training row paired (CDAE on pairs only), warmed up for about as many steps as `ours`.

Each row is pre-trained (`run_pretrain.py --model_type lrat`) once per seed on `--train_split`, then measured in two
ways with the same seed: linear probes of its frozen pooled text, audio and fused states (`audiolang.probing`, the
probe every family shares, fitted on `train` and scored on `test`, EER on the unseen `speaker_test` speakers; log-mel
statistics as the no-model baseline) on `--probe_tasks`, and fine-tuning (`run_finetune.py --model_type lrat`) on
each of `--tasks`. Probing a row costs about a fiftieth of fine-tuning it on three tasks, so the probes are the
measure that fits a CPU (`--tasks` with no task skips fine-tuning). Manual transcripts (`text`) serve as the text
of pre-training, probing and fine-tuning. One JSON line per finished run goes to `benchmarks/results/<name>.jsonl`
(a pre-training line with its IDP curve, a probe line with its records, or a fine-tuning line with the task's test
metrics); a run whose line is already there is skipped, and the pre-training and fine-tuning folders under
`--output_dir` are reused, so an interrupted sweep resumes where it stopped. At the end: `<name>.md`, the tables of
mean ± sample standard deviation over the seeds, and `<name>_idp.png`, masked-token accuracy of audio -> text and L1
of text -> audio translations of held-out validation pairs after each IDP iteration (mean over seeds), with
what a translation that ignores its source scores as a dotted line (`audio_blind_baselines`).

    python benchmarks/lrat_ablations.py --preset small --seeds 0 1 2
    # the smallest check: tiny corpus, tiny model, one seed, one task
    python benchmarks/lrat_ablations.py --corpus_preset tiny --preset tiny --seeds 0 --tasks emotion \
        --probe_tasks emotion --num_paired 8 --warmup_epochs 1 --num_iterations 2 --epochs 1 \
        --name lrat_ablations_smoke
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    RESULTS,
    Results,
    cached_run,
    mean_and_std,
    pretrain_sweep_arguments,
    sweep_arguments,
)
from linear_probe import markdown_table as probe_table  # noqa: E402
from linear_probe import probe_model, summaries  # noqa: E402

from audiolang.probing import LOG_MEL_STREAM, PROBE_TASKS  # noqa: E402

TASK_METRICS = {
    "emotion": ("test_wa", "test_ua"),
    "valence": ("test_mae", "test_pearson"),
    "speaker": ("test_eer",),
    "intent": ("test_accuracy", "test_macro_f1"),
    "directed": ("test_accuracy", "test_eer"),
}
# Row -> run_pretrain arguments (None: no pre-training of its own).
ROWS: dict[str, list[str] | None] = {
    "w/o pre-training": None,
    "w/o IDAE": ["--no_idae"],
    "w/o IDP": ["--no_idp"],
    "w/o paired data": ["--num_paired", "0"],
    "ours": [],
    "fully paired": ["--fully_paired"],
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument(
        "--tasks", nargs="*", default=["emotion", "valence", "speaker"], choices=list(TASK_METRICS)
    )
    parser.add_argument(
        "--probe_tasks",
        nargs="*",
        default=[task for task in PROBE_TASKS if task not in ("text_dependence", "spread")],
        choices=PROBE_TASKS,
        help="linear-probe tasks of every row's frozen model (none: no probes)",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--preset", default="small", help="lrat architecture preset")
    parser.add_argument("--corpus_preset", default="default")
    parser.add_argument(
        "--corpus_dir", default=None, help="a built corpus folder (default: the corpus cache)"
    )
    parser.add_argument("--train_split", default="pretrain")
    parser.add_argument(
        "--max_train_samples", type=int, default=None, help="pre-train on the first N rows only"
    )
    parser.add_argument(
        "--num_paired", type=int, default=100, help="pairs of 'ours' (the paper: 500 of 126k)"
    )
    parser.add_argument("--warmup_epochs", type=int, default=10)
    parser.add_argument(
        "--num_iterations", type=int, default=5, help="K: IDAE + CDAE epochs, one IDP round each"
    )
    parser.add_argument("--pretrain_batch_size", type=int, default=16)
    parser.add_argument("--pretrain_learning_rate", type=float, default=2e-4)
    parser.add_argument("--epochs", type=float, default=3.0, help="fine-tuning epochs")
    parser.add_argument("--batch_size", type=int, default=32, help="fine-tuning batch size")
    parser.add_argument("--learning_rate", type=float, default=2e-4, help="fine-tuning learning rate")
    parser.add_argument("--output_dir", default="out/lrat-ablations")
    parser.add_argument("--name", default="lrat_ablations", help="results file name")
    return parser.parse_args(argv)


def slug(row: str) -> str:
    return row.replace("/", "").replace(" ", "-")


def pretrain_argv(args: argparse.Namespace, row: str, seed: int, rows: int) -> list[str]:
    """run_pretrain.py arguments of one row's pre-training; `rows` is the number of pre-training rows."""
    # A row's own flags come last: argparse keeps the last value, so its --warmup_epochs replaces the sweep's.
    extra = list(ROWS[row])
    if row == "fully paired":
        # Warm up for about as many steps as `ours` does on its pairs.
        extra += ["--warmup_epochs", str(max(1, round(args.warmup_epochs * args.num_paired / rows)))]
    argv = [
        "--model_type", "lrat",
        "--preset", args.preset,
        "--corpus_preset", args.corpus_preset,
        "--train_split", args.train_split,
        "--text_column", "text",
        "--num_paired", str(args.num_paired),
        "--warmup_epochs", str(args.warmup_epochs),
        "--num_iterations", str(args.num_iterations),
        "--save_total_limit", "1",
        *pretrain_sweep_arguments(seed, args.pretrain_batch_size, args.pretrain_learning_rate),
        *extra,
    ]  # fmt: skip
    if args.corpus_dir:
        argv += ["--corpus_dir", args.corpus_dir]
    if args.max_train_samples:
        argv += ["--max_train_samples", str(args.max_train_samples)]
    if row == "ours":
        argv += ["--save_initial_model", str(Path(args.output_dir) / "initial" / f"seed-{seed}")]
    return argv


def finetune_argv(args: argparse.Namespace, task: str, seed: int, model: Path) -> list[str]:
    return [
        "--model_type", "lrat",
        "--model_name_or_path", str(model),
        "--text_source", "manual",
        *sweep_arguments(
            task, seed, args.epochs, args.batch_size, args.learning_rate, args.corpus_preset, args.corpus_dir
        ),
    ]  # fmt: skip


def pretrain(args: argparse.Namespace, results: Results, row: str, seed: int, rows: int) -> Path:
    """One row's pre-training on `rows` pre-training rows, unless its line is there."""
    folder = Path(args.output_dir) / slug(row) / f"seed-{seed}"
    if results.find(kind="pretrain", row=row, seed=seed) is None:
        result = cached_run(
            "run_pretrain.py", "pretrain_results.json", folder, pretrain_argv(args, row, seed, rows)
        )
        results.add(kind="pretrain", row=row, seed=seed, **result)
    return folder


def markdown_table(results: Results, rows: list[str], tasks: list[str]) -> str:
    columns = [(task, metric) for task in tasks for metric in TASK_METRICS[task]]
    lines = [
        "| setting | "
        + " | ".join(f"{task} {metric.removeprefix('test_')}" for task, metric in columns)
        + " |",
        "|---|" + "---|" * len(columns),
    ]
    for row in rows:
        cells = []
        for task, metric in columns:
            runs = [line for line in results.lines if line.get("kind") == "finetune" and line["row"] == row]
            summary = mean_and_std([line for line in runs if line["task"] == task], (metric,))
            cells.append(
                f"{summary[metric]:.4f} ± {summary[f'{metric}_std']:.4f}" if metric in summary else "-"
            )
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_idp_curves(results: Results, rows: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, (text_axis, audio_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for row in rows:
        curves = [
            line["idp_history"]
            for line in results.lines
            if line.get("kind") == "pretrain" and line["row"] == row
        ]
        if not curves:
            continue
        iterations = sorted({point["iteration"] for curve in curves for point in curve})
        for axis, key in ((text_axis, "text_accuracy"), (audio_axis, "audio_l1")):
            means = [
                statistics.fmean(p[key] for curve in curves for p in curve if p["iteration"] == k)
                for k in iterations
            ]
            axis.plot(iterations, means, marker="o", label=row)
    baselines = [line for line in results.lines if line.get("kind") == "baseline"]
    if baselines:
        for axis, key in ((text_axis, "text_accuracy"), (audio_axis, "audio_l1")):
            value = statistics.fmean(line[key] for line in baselines)
            axis.axhline(value, color="grey", linestyle=":", label="audio-blind / text-blind baseline")
    text_axis.set(xlabel="IDP iteration k", ylabel="masked-token accuracy", title="audio -> text translation")
    audio_axis.set(
        xlabel="IDP iteration k", ylabel="L1 to the real frames", title="text -> audio translation"
    )
    for axis in (text_axis, audio_axis):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    text_axis.legend()
    figure.suptitle("Translation quality of held-out pairs after each IDP round (mean over seeds)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def audio_blind_baselines(
    args: argparse.Namespace, splits, folder: Path, split_seed: int = 0
) -> dict[str, float]:
    """What a translation that ignores its source scores on the IDP curve's held-out pairs (the first
    `num_validation_pairs` of `validation`, counted by `audiolang.training.TranslationScore` as the curve is): the
    reference that says whether a translation carries anything of the other modality.

    - `text_accuracy`: predicting, at each position, the most frequent token there among the run's paired training
      texts (what a decoder that only learnt the transcripts' usual shape gets right);
    - `audio_l1`: predicting, at each frame, the mean paired training frame there; `audio_l1_zeros`: predicting
      zeros (the mean of per-utterance-normalised features).

    `folder` is a pre-trained row's output (its tokenizer, feature extractor and settings).
    """
    import torch
    from transformers import AutoConfig, AutoProcessor

    from audiolang.training import DataCollatorForAudioText, TranslationScore, split_lrat_corpus

    config, processor = AutoConfig.from_pretrained(folder), AutoProcessor.from_pretrained(folder)
    settings = json.loads((folder / "pretrain_results.json").read_text())
    train = splits[args.train_split]
    train = train.select(range(min(settings["train_rows"], train.num_rows)))
    paired = split_lrat_corpus(train, args.num_paired, "text", seed=split_seed)["paired"]
    validation = splits["validation"].select(range(settings["num_validation_pairs"]))
    collate = DataCollatorForAudioText(processor, audio_column="audio", text_column="text")
    special = torch.tensor(processor.tokenizer.all_special_ids)
    text_length, audio_length = config.text_translation_length, config.audio_translation_length

    def batches(rows):
        for start in range(0, len(rows), 32):
            yield collate([rows[i] for i in range(start, min(start + 32, len(rows)))])

    counts = torch.zeros(text_length, config.vocab_size)
    frame_sum, frame_count = (
        torch.zeros(audio_length, config.audio_feature_size),
        torch.zeros(audio_length, 1),
    )
    for batch in batches(paired):
        ids = batch["input_ids"][:, :text_length]
        real = batch["attention_mask"][:, :text_length].bool()
        positions = torch.arange(ids.shape[1]).expand_as(ids)
        counts.index_put_((positions[real], ids[real]), torch.ones(int(real.sum())), accumulate=True)
        frames = batch["input_features"][:, :audio_length]
        mask = batch["audio_attention_mask"][:, :audio_length, None].float()
        frame_sum[: frames.shape[1]] += (frames * mask).sum(0)
        frame_count[: frames.shape[1]] += mask.sum(0)
    usual_token, mean_frame = counts.argmax(-1), frame_sum / frame_count.clamp(min=1)
    blind, zeros = TranslationScore(), TranslationScore()
    for batch in batches(validation):
        rows = batch["input_ids"].shape[0]
        for score, frames in ((blind, mean_frame), (zeros, torch.zeros_like(mean_frame))):
            score.add(
                batch,
                usual_token.expand(rows, -1),
                frames.expand(rows, -1, -1),
                special,
                text_length,
                audio_length,
            )
    return {**blind.result(), "audio_l1_zeros": zeros.result()["audio_l1"]}


def probe(
    args: argparse.Namespace, results: Results, splits, row: str, seed: int, folder: Path | None
) -> None:
    """Linear probes of one row's frozen model (`folder` None: log-mel statistics) unless its line is there."""
    if not args.probe_tasks or results.find(kind="probe", row=row, seed=seed) is not None:
        return
    started = time.perf_counter()
    records = probe_model(None if folder is None else str(folder), splits, args.probe_tasks, seed, "text", 32)
    results.add(
        kind="probe", row=row, seed=seed, seconds=round(time.perf_counter() - started, 1), records=records
    )


def probe_records(results: Results) -> list[dict]:
    """The probe lines flattened: one record per (row, seed, stream, task), the row under `model`."""
    return [
        {"model": line["row"], "seed": line["seed"], **record}
        for line in results.lines
        if line.get("kind") == "probe"
        for record in line["records"]
    ]


def report(args: argparse.Namespace, results: Results) -> str:
    order = [*args.rows, LOG_MEL_STREAM]
    summary = sorted(
        summaries(probe_records(results)),
        key=lambda s: order.index(s["model"]) if s["model"] in order else len(order),
    )
    parts = []
    if summary:
        parts += [
            f"## Linear probes (train -> test; EER on unseen speakers), seeds {args.seeds}\n",
            probe_table(summary),
        ]
    if args.tasks:
        parts += [f"## Fine-tuning, seeds {args.seeds}\n", markdown_table(results, args.rows, args.tasks)]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    results = Results(RESULTS / f"{args.name}.jsonl")
    from audiolang.training import load_splits

    splits = load_splits(None, args.corpus_preset, args.corpus_dir)
    rows = args.max_train_samples or splits[args.train_split].num_rows
    for seed in args.seeds:
        models = {row: pretrain(args, results, row, seed, rows) for row in args.rows if ROWS[row] is not None}
        if "w/o pre-training" in args.rows:
            if "ours" not in models:
                models["ours"] = pretrain(args, results, "ours", seed, rows)
            models["w/o pre-training"] = Path(args.output_dir) / "initial" / f"seed-{seed}"
        if "ours" in models and results.find(kind="baseline", seed=seed) is None:
            results.add(kind="baseline", seed=seed, **audio_blind_baselines(args, splits, models["ours"]))
        if args.probe_tasks:
            probe(args, results, splits, LOG_MEL_STREAM, seed, None)
            for row in args.rows:
                probe(args, results, splits, row, seed, models[row])
        for task in args.tasks:
            for row in args.rows:
                if results.find(kind="finetune", row=row, task=task, seed=seed) is not None:
                    continue
                folder = Path(args.output_dir) / "finetune" / task / slug(row) / f"seed-{seed}"
                result = cached_run(
                    "run_finetune.py",
                    "finetune_results.json",
                    folder,
                    finetune_argv(args, task, seed, models[row]),
                )
                metrics = {key: result[key] for key in TASK_METRICS[task] if key in result}
                results.add(
                    kind="finetune", row=row, task=task, seed=seed, train_size=result["train_size"], **metrics
                )
    (RESULTS / f"{args.name}.md").write_text(report(args, results))
    plot_idp_curves(results, args.rows, RESULTS / f"{args.name}_idp.png")
    print((RESULTS / f"{args.name}.md").read_text())


if __name__ == "__main__":
    main()
