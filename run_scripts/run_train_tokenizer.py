#!/usr/bin/env python
"""Train CTAL's byte-level BPE tokenizer (RoBERTa special tokens) on a dataset's transcripts.

The result is a `RobertaTokenizerFast` folder: `AutoTokenizer.from_pretrained(output_dir)` loads it, and
`CtalProcessor(CtalFeatureExtractor(), tokenizer)` pairs it with the audio features.

    # the embedded corpus' pretrain split, manual transcripts
    python run_scripts/run_train_tokenizer.py --output_dir out/ctal-tokenizer
    # ASR transcripts of any datasets.load_from_disk folder
    python run_scripts/run_train_tokenizer.py --dataset_path data/mine --split train --text_column asr_text \\
        --vocab_size 8000 --output_dir out/ctal-tokenizer
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from audiolang import train_ctal_tokenizer
from audiolang.training import check_output_folder, configure_logging, load_splits

logger = logging.getLogger("run_train_tokenizer")


@dataclass
class TokenizerArguments:
    output_dir: str = field(metadata={"help": "where to save the tokenizer"})
    dataset_path: str | None = field(
        default=None, metadata={"help": "a datasets.load_from_disk folder; default: the embedded corpus"}
    )
    corpus_preset: str = field(
        default="default", metadata={"help": "embedded corpus preset when no dataset_path"}
    )
    corpus_dir: str | None = field(
        default=None, metadata={"help": "where the embedded corpus is (built if missing)"}
    )
    corpus_seed: int = field(default=0)
    split: str = field(
        default="pretrain", metadata={"help": "split to train on (a lone Dataset folder is split 'train')"}
    )
    text_column: str = field(default="text", metadata={"help": "`text` (manual) or `asr_text` (ASR output)"})
    vocab_size: int = field(
        default=30_000, metadata={"help": "target vocabulary size (30K in the CTAL paper)"}
    )
    min_frequency: int = field(default=2, metadata={"help": "fewest occurrences of a pair to merge it"})
    model_max_length: int = field(default=512, metadata={"help": "the tokenizer's model_max_length"})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "write into a non-empty --output_dir instead of refusing it"}
    )


def main(argv: list[str] | None = None) -> None:
    configure_logging()
    (args,) = HfArgumentParser(TokenizerArguments).parse_args_into_dataclasses(args=argv)
    splits = load_splits(args.dataset_path, args.corpus_preset, args.corpus_dir, args.corpus_seed)
    if args.split not in splits:
        raise ValueError(f"`--split` {args.split!r} is not in the dataset; its splits are {sorted(splits)}.")
    dataset = splits[args.split]
    check_output_folder(args.output_dir, "--output_dir", args.overwrite_output_dir)
    logger.info("training on %d rows of %s[%r]", dataset.num_rows, args.split, args.text_column)
    tokenizer = train_ctal_tokenizer(
        dataset,
        vocab_size=args.vocab_size,
        min_frequency=args.min_frequency,
        text_column=args.text_column,
        output_dir=args.output_dir,
        model_max_length=args.model_max_length,
    )
    print(
        json.dumps(
            {
                "output_dir": args.output_dir,
                "vocab_size": len(tokenizer),
                "rows": dataset.num_rows,
                "split": args.split,
                "text_column": args.text_column,
            }
        )
    )


if __name__ == "__main__":
    main()
