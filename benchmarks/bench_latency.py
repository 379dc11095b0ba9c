#!/usr/bin/env python
"""Raw audio -> label latency and throughput of the `audio-text-classification` pipeline, per recogniser and
classifier runtime, against today's path (Whisper tiny.en recognition, then the float classifier) in the same run.

Configurations: every `--recognisers` spec (pocketsphinx with the model folder's domain language model, Whisper
tiny.en and base through transformers, tiny.en through faster-whisper/CTranslate2 int8 in a 10 s window) x the
classifier as float32, int8 (`quantize_int8`) and ONNX (`export_onnx`, run by onnxruntime); plus the shared encoder
pass (`share_encoder=True`) with tiny.en and the float and int8 (float audio tower) classifiers.

On a seeded sample of `--num_clips` labelled clips of the split (decoded before timing), per configuration:

- `latency`: each clip alone (batch 1) on one thread (torch, the recogniser, onnxruntime), after two unmeasured
  warm-up clips: `p50_ms`, `p95_ms`, `real_time_factor` (median seconds per second of audio), `accuracy`, and
  `agreement` (share of clips with the label of the same recogniser's float32 configuration; for the shared pass,
  of tiny.en's two-pass float32 one);
- `throughput`: all the clips in batches of `--batch_size` on every core: `clips_per_second`, `real_time_factor`.

A `check` record per quantised/exported classifier gives its accuracy and agreement with float32 on the whole split
with the corpus' transcripts (`asr_text`: the classifier alone). Ratios against the baseline are in each record;
`uptime`'s load average is recorded before and after. Writes `benchmarks/results/bench_latency.jsonl`, `.md` and
`.png`.

    python benchmarks/bench_latency.py --num_clips 40
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoProcessor, pipeline

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, Recorder  # noqa: E402

from audiolang.data import load_asr  # noqa: E402
from audiolang.data.asr import audio_to_array  # noqa: E402
from audiolang.export import OnnxSequenceClassifier, export_onnx, quantize_int8  # noqa: E402
from audiolang.pipelines import TASK, AudioTextClassificationPipeline, saved_asr_config  # noqa: E402
from audiolang.plots import new_figure, save_figure  # noqa: E402

NAME = "bench_latency"
BASELINE = ("whisper-tiny.en", "fp32", False)
DEFAULT_MODEL = "out/finetune-baselines/intent/pretrained-audio_text-1/seed0"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model_name_or_path", default=DEFAULT_MODEL)
    parser.add_argument("--dataset_path", type=Path, default=Path("out/corpus-default-seed0"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--label_column_name", default="intent")
    parser.add_argument("--num_clips", type=int, default=40, help="seeded sample of labelled clips to time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument(
        "--recognisers",
        nargs="+",
        default=["pocketsphinx", "whisper-tiny.en", "whisper-base", "faster-whisper-tiny.en"],
    )
    parser.add_argument(
        "--max_check_clips",
        type=int,
        default=None,
        help="clips of the int8/ONNX check (default: the whole split)",
    )
    parser.add_argument(
        "--onnx_dir", type=Path, default=Path("out/latency/onnx"), help="where the export goes"
    )
    return parser.parse_args(argv)


def load_uptime() -> str:
    """The 1, 5 and 15 minute load averages (`uptime`'s): the cores are shared."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def recogniser(spec: str, model: str, threads: int | None) -> Any:
    """The recogniser `spec` on `threads` threads (None: every core)."""
    if spec == "pocketsphinx":  # one core by construction; the model folder's domain language model
        record = saved_asr_config(model)
        return load_asr(spec, **(record[1] if record and record[0] == spec else {}))
    if spec.startswith("faster-whisper"):
        return load_asr(spec, cpu_threads=threads or 0, window_s=10)
    return load_asr(spec, num_threads=threads)


def sample(args: argparse.Namespace, id2label: dict[int, str]) -> dict[str, Any]:
    from datasets import Audio, load_from_disk

    split = load_from_disk(str(args.dataset_path))[args.split]
    names = split.features[args.label_column_name].names
    split = split.filter(lambda y: y >= 0, input_columns=args.label_column_name)
    split = split.cast_column("audio", Audio(sampling_rate=16_000))
    labels = [names[y] for y in split[args.label_column_name]]
    if set(labels) - set(id2label.values()):
        raise ValueError(f"labels {sorted(set(labels) - set(id2label.values()))} are not the model's")
    positions = np.random.default_rng(args.seed).permutation(split.num_rows)[: args.num_clips].tolist()
    clips = [audio_to_array(value)[0].astype(np.float32) for value in split.select(positions)["audio"]]
    return {
        "all_clips": split,
        "all_labels": labels,
        "clips": clips,
        "labels": [labels[i] for i in positions],
        "durations": [clip.size / 16_000 for clip in clips],
    }


def check_record(name: str, classify: Callable, reference: list[str], data: dict, rec: Recorder) -> None:
    """The classifier's labels on the whole split, with the corpus' transcripts, against float32's."""
    got = classify()
    gold = data["all_labels"]
    rec.record(
        kind="check",
        classifier=name,
        clips=len(got),
        accuracy=round(float(np.mean([g == y for g, y in zip(got, gold, strict=True)])), 4),
        fp32_accuracy=round(float(np.mean([r == y for r, y in zip(reference, gold, strict=True)])), 4),
        agreement=round(float(np.mean([g == r for g, r in zip(got, reference, strict=True)])), 4),
    )


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    cores = os.cpu_count() or 1
    rec = Recorder(NAME)
    rec.context.update(
        model=args.model_name_or_path, split=args.split, cores=cores, load_before=load_uptime()
    )
    torch.set_num_threads(cores)
    base = pipeline(TASK, model=args.model_name_or_path, pipeline_class=AudioTextClassificationPipeline)
    model = base.model.eval()
    processor = AutoProcessor.from_pretrained(args.model_name_or_path)
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    data = sample(args, id2label)
    export_onnx(model, processor, args.onnx_dir)
    classifiers: dict[str, Callable[[int | None], dict[str, Any]]] = {
        "fp32": lambda threads: {"model": model},
        "int8": lambda threads: {"model": quantize_int8(model)},
        "onnx": lambda threads: {
            "model": model,
            "classifier": OnnxSequenceClassifier(args.onnx_dir, threads),
        },
        # The shared pass with int8: the audio tower stays the recogniser's float encoder.
        "int8-keep-tower": lambda threads: {"model": quantize_int8(model, keep_audio_tower=True)},
    }

    # Equivalence on the whole split, classifier alone (transcripts given): int8 and ONNX against float32.
    split = data["all_clips"]
    if args.max_check_clips is not None:
        split = split.select(range(min(args.max_check_clips, split.num_rows)))
        data["all_labels"] = data["all_labels"][: split.num_rows]
    audio = [{"raw": audio_to_array(v)[0], "sampling_rate": 16_000} for v in split["audio"]]

    def labels_of(**built: Any) -> list[str]:
        pipe = pipeline(TASK, processor=processor, pipeline_class=AudioTextClassificationPipeline, **built)
        return [r["label"] for r in pipe(audio, transcript=split["asr_text"], batch_size=args.batch_size)]

    reference = labels_of(**classifiers["fp32"](None))
    for name in ("int8", "int8-keep-tower", "onnx"):
        check_record(name, lambda name=name: labels_of(**classifiers[name](None)), reference, data, rec)

    configurations = [(spec, name, False) for spec in args.recognisers for name in ("fp32", "int8", "onnx")]
    configurations += [("whisper-tiny.en", "fp32", True), ("whisper-tiny.en", "int8-keep-tower", True)]
    if BASELINE not in configurations:  # the ratios' denominator is always measured
        configurations.append(BASELINE)
    labels_by: dict[tuple, list[str]] = {}
    baseline: dict[str, float] = {}
    rows = []
    for spec, name, shared in sorted(configurations, key=lambda c: c != BASELINE):
        row = {"recogniser": spec, "classifier": name, "share_encoder": shared}
        # Latency: batch 1, one thread.
        torch.set_num_threads(1)
        pipe = pipeline(
            TASK,
            processor=processor,
            pipeline_class=AudioTextClassificationPipeline,
            asr=recogniser(spec, args.model_name_or_path, 1),
            share_encoder=shared,
            **classifiers[name](1),
        )
        for clip in data["clips"][:2]:
            pipe(clip, sampling_rate=16_000)
        seconds, labels = [], []
        for clip in data["clips"]:
            start = time.perf_counter()
            labels.append(pipe(clip, sampling_rate=16_000)["label"])
            seconds.append(time.perf_counter() - start)
        labels_by[(spec, name, shared)] = labels
        reference_labels = labels_by.get((spec, "fp32", False)) if not shared else labels_by.get(BASELINE)
        p50 = statistics.median(seconds)
        row.update(
            clips=len(seconds),
            p50_ms=round(1000 * p50, 1),
            p95_ms=round(1000 * float(np.percentile(seconds, 95)), 1),
            real_time_factor=round(
                statistics.median(s / d for s, d in zip(seconds, data["durations"], strict=True)), 4
            ),
            accuracy=round(float(np.mean([a == b for a, b in zip(labels, data["labels"], strict=True)])), 4),
            agreement=round(
                float(np.mean([a == b for a, b in zip(labels, reference_labels, strict=True)])), 4
            ),
        )
        # Throughput: batches, every core.
        torch.set_num_threads(cores)
        pipe = pipeline(
            TASK,
            processor=processor,
            pipeline_class=AudioTextClassificationPipeline,
            asr=recogniser(spec, args.model_name_or_path, None),
            share_encoder=shared,
            **classifiers[name](None),
        )
        pipe(data["clips"][: args.batch_size], sampling_rate=16_000, batch_size=args.batch_size)
        start = time.perf_counter()
        pipe(data["clips"], sampling_rate=16_000, batch_size=args.batch_size)
        elapsed = time.perf_counter() - start
        row.update(
            clips_per_second=round(len(data["clips"]) / elapsed, 2),
            batch_real_time_factor=round(elapsed / sum(data["durations"]), 4),
        )
        if (spec, name, shared) == BASELINE:
            baseline = {"p50_ms": row["p50_ms"], "clips_per_second": row["clips_per_second"]}
        row.update(
            p50_ratio=round(row["p50_ms"] / baseline["p50_ms"], 3),
            throughput_ratio=round(row["clips_per_second"] / baseline["clips_per_second"], 3),
            batch_size=args.batch_size,
            load=load_uptime(),
        )
        rows.append(rec.record(kind="pipeline", **row))
    write_table(rows, rec, data)
    return rows


def write_table(rows: list[dict[str, Any]], rec: Recorder, data: dict) -> None:
    lines = [
        f"Raw audio -> label, {rows[0]['clips']} test clips (seeded, median {statistics.median(data['durations']):.1f} s), "
        f"{rec.context['cores']} shared cores; load average before: {rec.context['load_before']}.",
        "",
        "| recogniser | classifier | shared pass | p50 ms (1 thread) | p95 ms | RTF | x baseline p50 | clips/s "
        "(batched, all cores) | x baseline | accuracy | agreement |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['recogniser']} | {r['classifier']} | {'yes' if r['share_encoder'] else ''} | {r['p50_ms']} | "
            f"{r['p95_ms']} | {r['real_time_factor']} | {r['p50_ratio']} | {r['clips_per_second']} | "
            f"{r['throughput_ratio']} | {r['accuracy']} | {r['agreement']} |"
        )
    (RESULTS / f"{NAME}.md").write_text("\n".join(lines) + "\n")
    figure = new_figure(9, 4.5)
    axes = figure.add_subplot(1, 1, 1)
    for r in rows:
        label = f"{r['recogniser']} {r['classifier']}{' shared' if r['share_encoder'] else ''}"
        axes.scatter(r["p50_ms"], r["clips_per_second"], s=30)
        axes.annotate(label, (r["p50_ms"], r["clips_per_second"]), fontsize=6)
    axes.axvline(150, linestyle=":", color="grey")
    axes.axhline(10, linestyle=":", color="grey")
    axes.set_xscale("log")
    axes.set_xlabel("p50 latency per command, batch 1, one thread (ms)")
    axes.set_ylabel("clips/s, batched, all cores")
    axes.set_title("audio-text-classification: latency and throughput (targets dotted)")
    save_figure(figure, RESULTS / f"{NAME}.png")


if __name__ == "__main__":
    main()
