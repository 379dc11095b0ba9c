#!/usr/bin/env python
"""ASR accuracy and speed on every split of a built corpus: Whisper (transformers) against pocketsphinx.

For each back-end and split, over the split's clips (all, or a seeded sample of `--max_per_split`):

- `wer`, `cer`: corpus-level word and character error rates of the transcripts against the manual `text`;
- `real_time_factor`: wall seconds of `transcribe` per second of audio (lower is faster; 1.0 is real time), with
  `--num_threads` torch threads (pocketsphinx always decodes on one core), after one unmeasured warm-up batch;
- `audio_seconds`, `clips`; and for pocketsphinx `same_as_corpus`, the share of transcripts equal to the corpus'
  own `asr_text` (the corpus builder's recogniser, rerun).

Back-ends: `whisper-base` and `whisper-tiny.en` (the packaged Whisper, `WhisperASR`: greedy unless `--num_beams`,
encoder windows of `--min_window_s`), and `pocketsphinx` with the corpus' domain language model (`asr_lm/` in the
corpus folder, which the builder made from the `pretrain` split's text) when there is one, else the bundled general
model. The domain LM has seen the sentences of `pretrain`, `train` and `validation` (and their templates): only
`test`, whose sentences are held out of every training split, measures pocketsphinx honestly. Whisper knows none of
them. Lines with `split="all"` pool every split.

    python benchmarks/bench_asr.py --corpus_dir out/corpus-default-seed0 --max_per_split 50
    python benchmarks/bench_asr.py --corpus_dir out/corpus-default-seed0 --backends whisper-base --min_window_s 30
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Recorder  # noqa: E402

from audiolang.conversion import PACKAGED_WHISPER  # noqa: E402
from audiolang.data import load_corpus  # noqa: E402
from audiolang.data.asr import ASRBackend, PocketSphinxASR, audio_to_array, load_asr  # noqa: E402
from audiolang.metrics.asr import character_error_rate, word_error_rate  # noqa: E402

SAMPLING_RATE = 16_000


def installed_backends() -> list[str]:
    """The Whisper models whose wheels are installed, then pocketsphinx."""
    whisper = [
        f"whisper-{name}"
        for name, packaged in PACKAGED_WHISPER.items()
        if all(importlib.util.find_spec(package) for package, _ in packaged.model_bin_parts)
    ]
    return [*whisper, "pocketsphinx"]


def build_backend(spec: str, corpus_dir: Path, args: argparse.Namespace) -> tuple[ASRBackend, str]:
    """The back-end and a label that says how it was configured."""
    if spec == "pocketsphinx":
        lm_path, dict_path = corpus_dir / "asr_lm" / "domain.arpa", corpus_dir / "asr_lm" / "domain.dict"
        if lm_path.is_file() and dict_path.is_file():
            return PocketSphinxASR(lm_path=lm_path, dict_path=dict_path), "pocketsphinx+corpus-domain-lm"
        return PocketSphinxASR(), "pocketsphinx+general-lm"
    asr = load_asr(
        spec,
        num_beams=args.num_beams,
        batch_size=args.batch_size,
        min_window_s=args.min_window_s,
        num_threads=args.num_threads,
    )
    decoding = "greedy" if args.num_beams == 1 else f"beam{args.num_beams}"
    return asr, f"{spec}+{decoding}+window{args.min_window_s:g}s"


def transcribe_timed(asr: ASRBackend, audio: list[np.ndarray], batch_size: int) -> tuple[list[str], float]:
    """Transcripts and wall seconds, in batches of `batch_size` clips."""
    start = time.perf_counter()
    transcripts = []
    for i in range(0, len(audio), batch_size):
        transcripts += asr.transcribe(audio[i : i + batch_size], SAMPLING_RATE)
    return transcripts, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--corpus_dir", type=Path, required=True, help="a corpus folder written by build_corpus"
    )
    parser.add_argument(
        "--max_per_split", type=int, default=None, help="seeded sample per split (default: all)"
    )
    parser.add_argument("--seed", type=int, default=0, help="the sample's seed")
    parser.add_argument(
        "--backends",
        nargs="+",
        default=None,
        help="load_asr specs (default: the installed Whisper, pocketsphinx)",
    )
    parser.add_argument("--num_beams", type=int, default=1, help="Whisper: 1 is greedy decoding")
    parser.add_argument("--batch_size", type=int, default=8, help="clips per transcribe call")
    parser.add_argument(
        "--min_window_s", type=float, default=10.0, help="Whisper: the shortest encoder window"
    )
    parser.add_argument(
        "--num_threads", type=int, default=None, help="Whisper: torch threads (default: all cores)"
    )
    args = parser.parse_args()

    corpus = load_corpus(args.corpus_dir)
    splits = {}
    for name, split in corpus.items():
        if args.max_per_split is not None and split.num_rows > args.max_per_split:
            split = split.shuffle(seed=args.seed).select(range(args.max_per_split))
        audio = [audio_to_array(value)[0] for value in split["audio"]]
        splits[name] = (audio, split["text"], split["asr_text"])

    rec = Recorder("bench_asr")
    threads = args.num_threads or os.cpu_count()
    for spec in args.backends or installed_backends():
        asr, label = build_backend(spec, args.corpus_dir, args)
        asr.transcribe(
            next(iter(splits.values()))[0][:1], SAMPLING_RATE
        )  # warm-up: model loading is not per-clip
        pooled: dict[str, list] = {"refs": [], "hyps": [], "seconds": [], "audio_seconds": []}
        for name, (audio, references, corpus_transcripts) in splits.items():
            hypotheses, seconds = transcribe_timed(asr, audio, args.batch_size)
            audio_seconds = sum(x.size for x in audio) / SAMPLING_RATE
            extra = {}
            if spec == "pocketsphinx":
                same = np.mean([h == c for h, c in zip(hypotheses, corpus_transcripts, strict=True)])
                extra["same_as_corpus"] = round(float(same), 3)
            rec.record(
                backend=label,
                split=name,
                clips=len(audio),
                audio_seconds=round(audio_seconds, 1),
                wer=round(word_error_rate(references, hypotheses), 4),
                cer=round(character_error_rate(references, hypotheses), 4),
                real_time_factor=round(seconds / audio_seconds, 4),
                threads=1 if spec == "pocketsphinx" else threads,
                **extra,
            )
            for key, value in zip(pooled, (references, hypotheses, [seconds], [audio_seconds]), strict=True):
                pooled[key] += value
        rec.record(
            backend=label,
            split="all",
            clips=len(pooled["refs"]),
            audio_seconds=round(sum(pooled["audio_seconds"]), 1),
            wer=round(word_error_rate(pooled["refs"], pooled["hyps"]), 4),
            cer=round(character_error_rate(pooled["refs"], pooled["hyps"]), 4),
            real_time_factor=round(sum(pooled["seconds"]) / sum(pooled["audio_seconds"]), 4),
            threads=1 if spec == "pocketsphinx" else threads,
        )


if __name__ == "__main__":
    main()
