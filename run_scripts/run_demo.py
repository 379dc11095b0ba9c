#!/usr/bin/env python
"""The README's main job on the embedded default: build the in-car corpus and report it.

Stages are added here as model families land (pre-training, fine-tuning, evaluation, model card).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

from audiolang.data import CorpusConfig, build_corpus, corpus_dir, corpus_info

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_build_corpus import format_statistics  # noqa: E402


@dataclass
class DemoArguments:
    preset: str = field(default="default", metadata={"help": "corpus preset: tiny, default or large"})
    output_dir: str = field(default="out", metadata={"help": "where the corpus, models and results go"})
    seed: int = field(default=0)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    (args,) = HfArgumentParser(DemoArguments).parse_args_into_dataclasses(args=argv)
    out = Path(args.output_dir)
    config = CorpusConfig.from_preset(args.preset, seed=args.seed)
    path = corpus_dir(config, out / f"corpus-{args.preset}-seed{args.seed}")
    start = time.perf_counter()
    build_corpus(config=config, output_dir=path)
    stats = corpus_info(path)["statistics"]
    print(f"\n== corpus ({args.preset}, seed {args.seed}) at {path}, ready in {time.perf_counter() - start:.0f} s")
    print(format_statistics(stats))
    out.mkdir(parents=True, exist_ok=True)
    (out / "corpus_statistics.json").write_text(json.dumps(stats, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
