#!/usr/bin/env python
"""Build the embedded in-car voice-assistant corpus (synthetic voices, cabin noise, real offline ASR).

Example:
    python run_scripts/run_build_corpus.py --preset default --output_dir data/incar --seed 0
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from audiolang.data import (
    CORPUS_PRESETS,
    CorpusConfig,
    build_corpus,
    corpus_dir,
    corpus_info,
    format_statistics,
)
from audiolang.training import configure_logging


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
    asr: str = field(
        default="pocketsphinx",
        metadata={
            "help": "the ASR giving asr_text: 'pocketsphinx' (with a domain LM from the pretrain split's text), "
            "'whisper-base', 'whisper-tiny.en', or any load_asr spec"
        },
    )
    labelled_asr: str | None = field(
        default=None,
        metadata={
            "help": "the ASR giving asr_text in every split but pretrain, e.g. 'whisper-tiny.en' (the pipeline's "
            "default recogniser; default: the preset's, --asr's); 'none' for --asr's"
        },
    )
    overwrite: bool = field(
        default=False,
        metadata={
            "help": "replace the corpus in output_dir (another one, or a damaged copy): only the files its build "
            "wrote (listed in its marker) are deleted, and a folder that holds anything else is refused"
        },
    )


def main(argv: list[str] | None = None) -> None:
    configure_logging()
    (args,) = HfArgumentParser(BuildArguments).parse_args_into_dataclasses(args=argv)
    overrides = {}
    if args.labelled_asr is not None:
        overrides["labelled_asr"] = None if args.labelled_asr.lower() == "none" else args.labelled_asr
    config = CorpusConfig.from_preset(
        args.preset, seed=args.seed, num_utterances=args.num_utterances, asr=args.asr, **overrides
    )
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


if __name__ == "__main__":
    main()
