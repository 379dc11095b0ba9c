#!/usr/bin/env python
"""Corpus-building throughput and ASR speed.

Measures (1) utterances per second for a whole corpus build (plan, synthesis, cabin acoustics,
recognition, save) on all cores, and (2) the recogniser's real-time factor on one core, as audio seconds
per wall second over the built audio (the speed of the pocketsphinx back-end with the domain LM).

    python benchmarks/bench_corpus.py [--num_utterances 200]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Recorder  # noqa: E402

from audiolang.data import CorpusConfig, PocketSphinxASR, build_corpus  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--num_utterances", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rec = Recorder("bench_corpus")
    workers = os.cpu_count() or 1
    config = CorpusConfig.from_preset("default", seed=args.seed, num_utterances=args.num_utterances)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "corpus"
        start = time.perf_counter()
        dataset = build_corpus(config=config, output_dir=out, num_workers=workers, progress=False)
        elapsed = time.perf_counter() - start
        n = config.num_utterances
        rec.record(
            metric="build_utterances_per_second",
            value=round(n / elapsed, 2),
            utterances=n,
            seconds=round(elapsed, 1),
            workers=workers,
        )

        # ASR alone, one process, on the audio just built (same domain LM the build used).
        asr = PocketSphinxASR(
            lm_path=out / "asr_lm" / "domain.arpa", dict_path=out / "asr_lm" / "domain.dict"
        )
        ds = dataset["test"]
        audios = [ex["audio"].get_all_samples().data.numpy()[0] for ex in ds]
        asr.transcribe(audios[:1], 16_000)  # warm-up: decoder start-up is not per-utterance cost
        start = time.perf_counter()
        asr.transcribe(audios, 16_000)
        wall = time.perf_counter() - start
        audio_s = float(np.sum([a.size for a in audios])) / 16_000
        rec.record(
            metric="asr_realtime_factor",
            backend="pocketsphinx+domain-lm",
            value=round(audio_s / wall, 2),
            unit="audio seconds per wall second (one core)",
            audio_seconds=round(audio_s, 1),
        )


if __name__ == "__main__":
    main()
