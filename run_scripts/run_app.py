#!/usr/bin/env python
"""Start the Gradio demo app (``audiolang.app``) on saved model folders or Hub ids.

Record or upload a clip: each fine-tuned classifier shows its labels with scores and the transcript it read (its own
ASR, or the transcript you type); a DSCLAP/Turbo folder scores the clip against label prompts you type; a DSCLAP
folder also searches clips by text, over clips indexed at start-up (``--search_dataset`` or ``--search_folder``).

    python run_scripts/run_app.py --model out/finetune/intent-pretrained --model out/finetune/directed-pretrained \
        --model out/dsclap --search_dataset out/corpus-default-seed0 --search_split test --search_size 64

The example clips of each model folder (``examples/``, written with its model card) are offered as inputs.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
from transformers import HfArgumentParser

import audiolang.pipelines  # noqa: F401  (registers the audio-text-classification pipeline)
from audiolang.app import Clip, build_demo, load_example_clips
from audiolang.hub import EXAMPLES_DIR, examples_from_dataset, save_examples
from audiolang.training import DatasetArguments, configure_logging, load_raw_splits, load_splits

logger = logging.getLogger("run_app")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")


@dataclass
class AppArguments:
    model: list[str] = field(
        metadata={
            "help": "model folders or Hub ids, repeatable (--model A --model B) or several at once: fine-tuned "
            "classifiers, and at most one DSCLAP/Turbo model for zero-shot scores (and, DSCLAP, search)",
            "action": "extend",
        }
    )
    search_dataset: str | None = field(
        default=None,
        metadata={
            "help": "index clips of this dataset for search: a corpus or save_to_disk folder, or anything "
            "datasets.load_dataset reads (a Hub id, a local audiofolder or folder of data files)"
        },
    )
    search_split: str = field(default="test")
    search_size: int = field(default=32, metadata={"help": "how many clips of --search_split to index"})
    search_text_column: str = field(default="asr_text", metadata={"help": "shown with each indexed clip"})
    search_folder: str | None = field(
        default=None, metadata={"help": f"index the audio files ({', '.join(AUDIO_SUFFIXES)}) of this folder"}
    )
    host: str = field(default="127.0.0.1", metadata={"help": "0.0.0.0 to serve other machines"})
    port: int | None = field(
        default=None, metadata={"help": "default: Gradio's (7860, or the next free one)"}
    )
    share: bool = field(default=False, metadata={"help": "also serve through a public gradio.live link"})
    title: str = field(default="audiolang demo")
    trust_remote_code: bool = field(
        default=False,
        metadata={"help": "load the checkpoints' own code (Hub models of unknown provenance: no)"},
    )
    device: str | None = field(default=None, metadata={"help": "e.g. cpu, cuda:0 (default: transformers')"})


def search_clips(args: AppArguments) -> list[Clip]:
    """The clips to index: the first ``--search_size`` short clips of ``--search_dataset``'s split, written as files
    (the app plays and reads files), or the audio files of ``--search_folder``."""
    if args.search_dataset and args.search_folder:
        raise ValueError("--search_dataset and --search_folder both name clips to index: pass one")
    if args.search_folder:
        folder = Path(args.search_folder)
        if (folder / "metadata.jsonl").is_file():
            return load_example_clips(folder)
        return [
            Clip(str(p), title=p.name) for p in sorted(folder.iterdir()) if p.suffix.lower() in AUDIO_SUFFIXES
        ]
    if not args.search_dataset:
        return []
    folder = Path(args.search_dataset)
    if (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file():
        splits = load_splits(args.search_dataset)
    else:
        splits = load_raw_splits(DatasetArguments(dataset_name=args.search_dataset))
    if args.search_split not in splits:
        raise ValueError(
            f"--search_split {args.search_split!r} is not in {args.search_dataset}: {sorted(splits)}"
        )
    clips = examples_from_dataset(
        splits[args.search_split], num_examples=args.search_size, text_column=args.search_text_column
    )
    folder = Path(tempfile.mkdtemp(prefix="audiolang-app-"))
    save_examples(folder, clips)
    logger.info("indexing %d clips of %s[%s]", len(clips), args.search_dataset, args.search_split)
    return load_example_clips(folder / EXAMPLES_DIR)


def example_clips(models: list[str]) -> list[Clip]:
    """The example clips saved in the model folders, each transcript once: classifiers fine-tuned on one corpus save
    the same test clips (the first folder's title wins)."""
    unique: dict[str, Clip] = {}
    for model in models:
        for clip in load_example_clips(Path(model) / EXAMPLES_DIR):
            unique.setdefault(clip.transcript, clip)
    return list(unique.values())


def build_app(args: AppArguments) -> gr.Blocks:
    """The app of ``args``: the models, the example clips of their folders, and the search index."""
    # Classifiers fine-tuned on one corpus save the same test clips as examples: show each transcript once.
    return build_demo(
        args.model,
        examples=example_clips(args.model),
        search_clips=search_clips(args),
        title=args.title,
        trust_remote_code=args.trust_remote_code,
        device=args.device,
    )


def main(argv: list[str] | None = None) -> None:
    (args,) = HfArgumentParser(AppArguments).parse_args_into_dataclasses(args=argv)
    configure_logging()
    build_app(args).launch(server_name=args.host, server_port=args.port, share=args.share)


if __name__ == "__main__":
    main()
