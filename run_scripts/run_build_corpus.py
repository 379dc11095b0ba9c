#!/usr/bin/env python
"""Build the embedded in-car voice-assistant corpus (synthetic voices, cabin noise, real offline ASR).

Example:
    python run_scripts/run_build_corpus.py --preset default --output_dir data/incar --seed 0
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from audiolang.data import CORPUS_PRESETS, CorpusConfig, build_corpus, corpus_dir, corpus_info


@dataclass
class BuildArguments:
    preset: str = field(default="default", metadata={"help": f"one of {sorted(CORPUS_PRESETS)}"})
    output_dir: str | None = field(
        default=None, metadata={"help": "where to save it (default: the cache, $AUDIOLANG_CACHE/corpus/...)"}
    )
    seed: int = field(default=0, metadata={"help": "same seed, same audio and text"})
    num_utterances: int | None = field(default=None, metadata={"help": "rescale the preset to this total"})
    num_workers: int | None = field(
        default=None, metadata={"help": "rendering processes (default: all cores)"}
    )
    overwrite: bool = field(
        default=False, metadata={"help": "replace an output_dir that holds another corpus"}
    )


def format_statistics(stats: dict) -> str:
    """A plain-text table of split sizes, speakers, hours and ASR error rates."""
    lines = [f"{'split':<13}{'utts':>7}{'spk':>5}{'hours':>8}{'directed':>10}{'WER':>8}{'CER':>8}"]
    for name, s in stats["splits"].items():
        lines.append(
            f"{name:<13}{s['utterances']:>7}{s['speakers']:>5}{s['hours']:>8.3f}{s['directed_share']:>10.2f}"
            f"{s['asr_wer']:>8.1%}{s['asr_cer']:>8.1%}"
        )
    lines.append(
        f"{'all':<13}{stats['utterances']:>7}{stats['speakers']:>5}{stats['hours']:>8.3f}{'':>10}"
        f"{stats['asr_wer']:>8.1%}{stats['asr_cer']:>8.1%}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    (args,) = HfArgumentParser(BuildArguments).parse_args_into_dataclasses(args=argv)
    config = CorpusConfig.from_preset(args.preset, seed=args.seed, num_utterances=args.num_utterances)
    path = corpus_dir(config, args.output_dir)
    build_corpus(config=config, output_dir=path, num_workers=args.num_workers, overwrite=args.overwrite)
    info = corpus_info(path)
    print(f"corpus at {path}")
    print(format_statistics(info["statistics"]))
    print(
        json.dumps(
            {
                "corpus": str(path),
                **{
                    k: info["statistics"][k]
                    for k in ("utterances", "speakers", "hours", "asr_wer", "asr_cer")
                },
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
