#!/usr/bin/env python
"""Throughput of the `audio-text-classification` pipeline on a corpus split: clips per second, with and without the
speech-recognition step.

For each `--batch_sizes` value, the pipeline classifies the same clips twice, after one unmeasured warm-up batch:

- `asr`: raw audio only; the recogniser transcribes each clip (the one the model folder records, else the corpus'
  own: pocketsphinx with the corpus' domain language model), then the model classifies it: DSCLAP's deployment;
- `none`: the clips with the corpus' `asr_text`, so only the feature extraction, tokenisation and the model run.

Each record gives `clips_per_second`, the `real_time_factor` (wall seconds per second of audio) and `seconds`, on
`--num_threads` torch threads (pocketsphinx decodes on one core). The clips are decoded before timing.

    python benchmarks/bench_pipeline.py --model out/dsclap-intent --corpus_dir out/corpus-default-seed0 --max_clips 200
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from transformers import pipeline

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Recorder  # noqa: E402

from audiolang.data import load_asr, load_corpus  # noqa: E402
from audiolang.data.asr import audio_to_array  # noqa: E402
from audiolang.pipelines import TASK, AudioTextClassificationPipeline, corpus_asr, load_saved_asr  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="a fine-tuned classifier folder")
    parser.add_argument(
        "--corpus_dir", type=Path, required=True, help="a corpus folder written by build_corpus"
    )
    parser.add_argument("--split", default="test")
    parser.add_argument(
        "--max_clips", type=int, default=None, help="the first N clips of the split (default: all)"
    )
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--num_threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    if args.num_threads is not None:
        torch.set_num_threads(args.num_threads)
    split = load_corpus(args.corpus_dir)[args.split]
    if args.max_clips is not None:
        split = split.select(range(min(args.max_clips, split.num_rows)))
    clips = [
        dict(zip(("raw", "sampling_rate"), audio_to_array(value), strict=True)) for value in split["audio"]
    ]
    transcripts = split["asr_text"]
    audio_seconds = sum(clip["raw"].size / clip["sampling_rate"] for clip in clips)

    asr, asr_source = load_saved_asr(args.model), "model folder"
    if asr is None:
        spec, kwargs = corpus_asr(args.corpus_dir)
        asr, asr_source = load_asr(spec, **kwargs), "corpus"
    classifier = pipeline(
        TASK, model=args.model, pipeline_class=AudioTextClassificationPipeline, device=args.device, asr=asr
    )
    rec = Recorder("bench_pipeline")
    for batch_size in args.batch_sizes:
        for step in ("asr", "none"):
            kwargs = {"transcript": transcripts} if step == "none" else {}
            warmup = {"transcript": transcripts[:batch_size]} if step == "none" else {}
            classifier(
                clips[:batch_size], batch_size=batch_size, **warmup
            )  # loads the recogniser and the kernels
            start = time.perf_counter()
            classifier(clips, batch_size=batch_size, **kwargs)
            seconds = time.perf_counter() - start
            rec.record(
                model=args.model,
                architecture=type(classifier.model).__name__,
                split=args.split,
                clips=len(clips),
                audio_seconds=round(audio_seconds, 1),
                batch_size=batch_size,
                asr=f"{asr!r} ({asr_source})" if step == "asr" else "none (transcripts given)",
                seconds=round(seconds, 3),
                clips_per_second=round(len(clips) / seconds, 2),
                real_time_factor=round(seconds / audio_seconds, 4),
                threads=torch.get_num_threads(),
                device=args.device,
                cpus=os.cpu_count(),
            )


if __name__ == "__main__":
    main()
