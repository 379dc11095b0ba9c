#!/usr/bin/env python
"""Linear probes of frozen models on the embedded corpus (`audiolang.probing`): for each model, each of its streams
(pooled text states, pooled audio states, their fusion or joint embedding) and each task, a linear model fitted on
the `train` split and scored on `test`, plus the EER of cosine scoring over the unseen `speaker_test` speakers; and
the same for log-mel statistics, the baseline that needs no model.

Any family works (ctal, lrat, dsclap, turbo): compare a pre-trained folder with the same weights before pre-training
(`run_pretrain.py --save_initial_model`). One JSON line per (model, seed, stream, task) and one summary line per
(model, stream, task) with the mean and sample standard deviation across seeds go to
`benchmarks/results/<name>.jsonl`, the table of headline metrics (`HEADLINE`) to `benchmarks/results/<name>.md`.

    python benchmarks/linear_probe.py --model_name_or_path out/ctal out/ctal-init --labels pre-trained initial \
        --corpus_dir out/corpus-default-seed0 --seeds 0 1 2

With `--audio_layers`, a dual encoder (DSCLAP, Turbo) also gets one stream per hidden state of its audio tower
(`audio_layer_0` ... `audio_layer_N`), and each task's headline metric against the layer, with log-mel statistics
as a flat reference, is drawn to `benchmarks/results/<name>_layers.png`:

    python benchmarks/linear_probe.py --model_name_or_path out/dsclap-whisper-init --labels whisper-base \
        --corpus_dir out/corpus-default-seed0 --tasks emotion speaker speaker_verification intent --audio_layers \
        --name whisper_layer_probe
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, Recorder, mean_and_std  # noqa: E402
from datasets import DatasetDict  # noqa: E402

from audiolang.plots import new_figure, save_figure  # noqa: E402
from audiolang.probing import (  # noqa: E402
    AUDIO_LAYER_STREAM,
    LOG_MEL_STREAM,
    PROBE_TASKS,
    load_probe_model,
    probe_representations,
)
from audiolang.training import few_shot, load_splits  # noqa: E402

# One number per task in the table: accuracy for the classification probes (WA for emotion), R^2 for valence, EER for
# the unseen speakers, and how far a stream moves with another clip's transcript.
HEADLINE: dict[str, str] = {
    "emotion": "accuracy",
    "intent": "accuracy",
    "directed": "accuracy",
    "speaker": "accuracy",
    "valence": "r2",
    "speaker_verification": "eer",
    "text_dependence": "ratio",
    "spread": "effective_rank",
}
# What a probe's cross-validation chose (its regularisation): reported per run, not averaged.
CHOSEN = ("c", "alpha")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model_name_or_path", nargs="*", default=[], help="saved model folders of any family"
    )
    parser.add_argument("--labels", nargs="*", default=None, help="a name per model for the table")
    parser.add_argument(
        "--log_mel", action=argparse.BooleanOptionalAction, default=True, help="probe log-mel statistics too"
    )
    parser.add_argument("--tasks", nargs="+", default=list(PROBE_TASKS), choices=list(PROBE_TASKS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument(
        "--dataset_path", default=None, help="a load_from_disk folder with the corpus' splits"
    )
    parser.add_argument(
        "--corpus_dir", default=None, help="a built corpus folder (default: the corpus cache)"
    )
    parser.add_argument("--corpus_preset", default="default")
    parser.add_argument("--corpus_seed", type=int, default=0)
    parser.add_argument(
        "--text_column", default="asr_text", help="asr_text (ASR transcripts) or text (manual)"
    )
    parser.add_argument(
        "--max_rows", type=int, default=None, help="probe a seeded subset of this many rows of each split"
    )
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument(
        "--audio_layers",
        action="store_true",
        help="also probe every hidden state of a dual encoder's audio tower, and plot the metrics per layer",
    )
    parser.add_argument("--name", default="linear_probe", help="results file name")
    args = parser.parse_args(argv)
    if args.labels is not None and len(args.labels) != len(args.model_name_or_path):
        parser.error("--labels needs one name per --model_name_or_path")
    if not args.model_name_or_path and not args.log_mel:
        parser.error("nothing to probe: give --model_name_or_path, or keep --log_mel")
    return args


def probe_splits(args: argparse.Namespace) -> DatasetDict:
    """The corpus splits the probe reads, each a seeded subset of `--max_rows` rows when given."""
    splits = load_splits(args.dataset_path, args.corpus_preset, args.corpus_dir, args.corpus_seed)
    return DatasetDict({name: few_shot(split, args.max_rows, seed=0) for name, split in splits.items()})


def probe_model(
    model_name_or_path: str | None,
    splits: DatasetDict,
    tasks: Sequence[str],
    seed: int,
    text_column: str,
    batch_size: int,
    audio_layers: bool = False,
) -> list[dict[str, Any]]:
    """`audiolang.probing.probe_representations` of a saved folder (`None`: log-mel statistics, which has no
    layers)."""
    model, processor = (
        (None, None) if model_name_or_path is None else load_probe_model(model_name_or_path, seed)
    )
    return probe_representations(
        model,
        processor,
        splits,
        tasks,
        seed=seed,
        text_column=text_column,
        batch_size=batch_size,
        audio_layers=audio_layers and model is not None,
    )


def summaries(
    records: Sequence[dict[str, Any]], keys: Sequence[str] = ("model", "stream", "task")
) -> list[dict]:
    """One record per distinct `keys`, with the mean and sample standard deviation across its seeds of every
    metric (`mean_and_std`), and the seeds."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(tuple(record[key] for key in keys), []).append(record)
    rows = []
    for group, members in groups.items():
        skip = {*keys, *CHOSEN}
        metrics = sorted({k for m in members for k, v in m.items() if isinstance(v, float) and k not in skip})
        rows.append(
            {
                **dict(zip(keys, group, strict=True)),
                "seeds": sorted(m["seed"] for m in members),
                **mean_and_std(members, metrics),
            }
        )
    return rows


def markdown_table(summary: Sequence[dict[str, Any]], row_keys: Sequence[str] = ("model", "stream")) -> str:
    """Rows: each distinct `row_keys` (in order of appearance); columns: each task's `HEADLINE` metric, as mean ±
    sample standard deviation over the seeds (↓ marks the EER, the one lower-is-better column)."""
    tasks = [task for task in HEADLINE if any(row["task"] == task for row in summary)]
    rows = list(dict.fromkeys(tuple(row[key] for key in row_keys) for row in summary))
    header = [
        *row_keys,
        *(f"{task} {HEADLINE[task]}{' ↓' if task == 'speaker_verification' else ''}" for task in tasks),
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = []
        for task in tasks:
            metric = HEADLINE[task]
            found = next(
                (s for s in summary if s["task"] == task and tuple(s[k] for k in row_keys) == row), None
            )
            if found is None or metric not in found:
                cells.append("-")
            else:
                cells.append(f"{found[metric]:.3f} ± {found.get(f'{metric}_std', 0.0):.3f}")
        lines.append("| " + " | ".join([*map(str, row), *cells]) + " |")
    return "\n".join(lines) + "\n"


def layer_curves(summary: Sequence[dict[str, Any]]) -> dict[str, dict[str, tuple[list[int], list[float]]]]:
    """`{task: {model: (layers, values)}}`: each task's `HEADLINE` metric of the `audio_layer_<k>` streams, by
    layer."""
    prefix = AUDIO_LAYER_STREAM.format("")
    rows = [
        (int(row["stream"][len(prefix) :]), row)
        for row in summary
        if row["stream"].startswith(prefix) and HEADLINE.get(row["task"]) in row
    ]
    curves: dict[str, dict[str, tuple[list[int], list[float]]]] = {}
    for layer, row in sorted(rows, key=lambda item: item[0]):
        layers, values = curves.setdefault(row["task"], {}).setdefault(row["model"], ([], []))
        layers.append(layer)
        values.append(row[HEADLINE[row["task"]]])
    return curves


def plot_layer_curves(summary: Sequence[dict[str, Any]], output_path: str | Path) -> dict:
    """One panel per task: its `HEADLINE` metric against the audio layer for every model (`layer_curves`), and the
    log-mel statistics' value as a dashed line. Returns the curves drawn."""
    curves = layer_curves(summary)
    if not curves:
        raise ValueError(
            "no `audio_layer_<k>` streams in the results: probe a dual encoder with `--audio_layers`"
        )
    figure = new_figure(3.2 * len(curves), 3.0)
    for axis, (task, per_model) in zip(
        figure.subplots(1, len(curves), squeeze=False)[0], curves.items(), strict=True
    ):
        metric = HEADLINE[task]
        for model, (layers, values) in per_model.items():
            axis.plot(layers, values, marker="o", label=model)
        baseline = next((r for r in summary if r["model"] == LOG_MEL_STREAM and r["task"] == task), None)
        if baseline is not None:
            axis.axhline(baseline[metric], color="grey", linestyle="--", label=LOG_MEL_STREAM)
        axis.set(title=task, xlabel="audio layer (0: embeddings)", ylabel=metric)
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.legend(fontsize="small")
    save_figure(figure, output_path)
    return curves


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    splits = probe_splits(args)
    models: list[tuple[str, str | None]] = list(
        zip(args.labels or args.model_name_or_path, args.model_name_or_path, strict=True)
    )
    if args.log_mel:
        models.append((LOG_MEL_STREAM, None))
    recorder = Recorder(args.name)
    records = []
    for label, folder in models:
        for seed in args.seeds:
            for record in probe_model(
                folder, splits, args.tasks, seed, args.text_column, args.batch_size, args.audio_layers
            ):
                records.append(recorder.record(kind="probe", model=label, folder=folder, seed=seed, **record))
    summary = [recorder.record(kind="summary", **row) for row in summaries(records)]
    table = markdown_table(summary)
    (RESULTS / f"{args.name}.md").write_text(table)
    print(table)
    if args.audio_layers:
        plot_layer_curves(summary, RESULTS / f"{args.name}_layers.png")


if __name__ == "__main__":
    main()
