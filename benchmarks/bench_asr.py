#!/usr/bin/env python
"""ASR accuracy and speed on a built corpus, per split and per synthesis engine: Whisper (transformers) against
pocketsphinx.

For each back-end, over the corpus' clips (all, or a seeded sample: `--max_per_split` clips per split, then at
most `--max_per_engine` per engine within a split), one JSON line per (split, engine) group, per split over every
engine (`engine="all"`), per engine over every split (`split="all"`) and over everything:

- `wer`, `cer`: corpus-level word and character error rates of the transcripts against the manual `text`;
- `real_time_factor`: wall seconds of `transcribe` per second of audio (lower is faster; 1.0 is real time), with
  `--num_threads` torch threads (pocketsphinx always decodes on one core), after one unmeasured warm-up batch;
- `audio_seconds`, `clips`; and for pocketsphinx `same_as_corpus`, the share of transcripts equal to the corpus'
  own `asr_text` (the corpus builder's recogniser, rerun).

Engines are the corpus' `engine` column: the formant and diphone synthesisers (`espeak-ng`, `flite`, `festival`)
and the neural voice (`hibari`, whose `test_natural` split holds only pseudo-speakers unseen elsewhere).

Back-ends: `whisper-base` and `whisper-tiny.en` (the packaged Whisper, `WhisperASR`: greedy unless `--num_beams`,
encoder windows of `--min_window_s`), and `pocketsphinx` with the corpus' domain language model (`asr_lm/` in the
corpus folder, which the builder made from the `pretrain` split's text) when there is one, else the bundled general
model. The domain LM has seen the sentences of `pretrain`, `train` and `validation` (and their templates): only
`test` and `test_natural`, whose sentences are held out of every training split, measure pocketsphinx honestly
(compare engines there). Whisper knows none of them.

    python benchmarks/bench_asr.py --corpus_dir out/corpus-default-seed0 --max_per_split 50
    python benchmarks/bench_asr.py --corpus_dir out/corpus-default-seed0 --splits test test_natural
    python benchmarks/bench_asr.py --corpus_dir out/corpus-default-seed0 --backends whisper-base --min_window_s 30
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Recorder  # noqa: E402

from audiolang.conversion import PACKAGED_WHISPER  # noqa: E402
from audiolang.data import corpus_info, load_corpus  # noqa: E402
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


@dataclass
class Group:
    """The clips of one (split, engine) group, and after a back-end ran, its transcripts and wall seconds."""

    split: str
    engine: str
    audio: list[np.ndarray]
    references: list[str]
    corpus_transcripts: list[str]
    hypotheses: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def audio_seconds(self) -> float:
        return sum(x.size for x in self.audio) / SAMPLING_RATE


def load_groups(args: argparse.Namespace) -> list[Group]:
    """The corpus' clips grouped by split and engine, sampled as the arguments ask (seeded)."""
    corpus = load_corpus(args.corpus_dir)
    unknown = sorted(set(args.splits or ()) - set(corpus))
    if unknown:
        raise ValueError(f"--splits {unknown} not in the corpus, which has {list(corpus)}")
    groups = []
    for name in args.splits or list(corpus):
        split = corpus[name]
        if args.max_per_split is not None and split.num_rows > args.max_per_split:
            split = split.shuffle(seed=args.seed).select(range(args.max_per_split))
        engines = split["engine"]
        for engine in sorted(set(engines)):
            rows = [i for i, e in enumerate(engines) if e == engine]
            if args.max_per_engine is not None and len(rows) > args.max_per_engine:
                rng = np.random.default_rng([args.seed, len(groups)])
                rows = sorted(rng.choice(rows, size=args.max_per_engine, replace=False).tolist())
            part = split.select(rows)
            audio = [audio_to_array(value)[0] for value in part["audio"]]
            groups.append(Group(name, engine, audio, part["text"], part["asr_text"]))
    return groups


def summary(groups: list[Group], spec: str) -> dict:
    """The error rates and real-time factor of some groups pooled (after a back-end ran on them)."""
    references = [r for g in groups for r in g.references]
    hypotheses = [h for g in groups for h in g.hypotheses]
    audio_seconds = sum(g.audio_seconds for g in groups)
    line = {
        "clips": len(references),
        "audio_seconds": round(audio_seconds, 1),
        "wer": round(word_error_rate(references, hypotheses), 4),
        "cer": round(character_error_rate(references, hypotheses), 4),
        "real_time_factor": round(sum(g.seconds for g in groups) / audio_seconds, 4),
    }
    if spec == "pocketsphinx":
        corpus = [c for g in groups for c in g.corpus_transcripts]
        line["same_as_corpus"] = round(
            float(np.mean([h == c for h, c in zip(hypotheses, corpus, strict=True)])), 3
        )
    return line


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--corpus_dir", type=Path, required=True, help="a corpus folder written by build_corpus"
    )
    parser.add_argument("--splits", nargs="+", default=None, help="the splits to measure (default: all)")
    parser.add_argument(
        "--max_per_split", type=int, default=None, help="seeded sample per split (default: all)"
    )
    parser.add_argument(
        "--max_per_engine",
        type=int,
        default=None,
        help="then at most this many clips per engine within a split, seeded (default: all)",
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
    parser.add_argument(
        "--results_name",
        default="bench_asr",
        help="benchmarks/results/<name>.jsonl, rewritten by this run (default: bench_asr)",
    )
    args = parser.parse_args()

    groups = load_groups(args)
    info = corpus_info(args.corpus_dir)
    corpus = {"corpus_preset": info["config"]["preset"], "corpus_fingerprint": info["fingerprint"]}
    rec = Recorder(args.results_name)
    threads = args.num_threads or os.cpu_count()
    for spec in args.backends or installed_backends():
        asr, label = build_backend(spec, args.corpus_dir, args)
        asr.transcribe(groups[0].audio[:1], SAMPLING_RATE)  # warm-up: model loading is not per-clip
        common = {**corpus, "backend": label, "threads": 1 if spec == "pocketsphinx" else threads}
        for group in groups:
            group.hypotheses, group.seconds = transcribe_timed(asr, group.audio, args.batch_size)
            rec.record(**common, split=group.split, engine=group.engine, **summary([group], spec))
        for split in dict.fromkeys(g.split for g in groups):
            rec.record(
                **common, split=split, engine="all", **summary([g for g in groups if g.split == split], spec)
            )
        for engine in sorted({g.engine for g in groups}):
            rec.record(
                **common,
                split="all",
                engine=engine,
                **summary([g for g in groups if g.engine == engine], spec),
            )
        rec.record(**common, split="all", engine="all", **summary(groups, spec))


if __name__ == "__main__":
    main()
