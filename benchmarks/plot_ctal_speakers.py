#!/usr/bin/env python
"""CTAL's Fig. 4: speaker embeddings of a pre-trained CTAL (no fine-tuning) for 10 speakers, by t-SNE.

An utterance's embedding is the masked mean of the final text-referred audio states. The figure shows the 10
speakers with the most utterances in `--split` (default `test`: held-out sentences). As a number to go with the
picture, the script also scores every trial pair of the unseen `speaker_test` speakers by cosine similarity of the
same embeddings, for the pre-trained model and for the model before pre-training (`--initial`), and records both
EERs in `benchmarks/results/ctal_speakers.jsonl`.

    python benchmarks/plot_ctal_speakers.py --pretrained out/ctal --initial out/ctal-init \
        --corpus_dir out/corpus-default-seed0
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, Recorder  # noqa: E402

from audiolang import masked_mean_pool  # noqa: E402
from audiolang.metrics import speaker_verification_eer  # noqa: E402
from audiolang.plots import new_figure, save_figure  # noqa: E402
from audiolang.training import collect_outputs, load_splits  # noqa: E402


def utterance_embeddings(folder: str, dataset, text_column: str, batch_size: int) -> np.ndarray:
    from transformers import AutoModel, AutoProcessor

    model = AutoModel.from_pretrained(folder)
    processor = AutoProcessor.from_pretrained(folder)
    (embeddings,) = collect_outputs(
        model,
        processor,
        dataset,
        text_column,
        lambda out, batch: (masked_mean_pool(out.audio_last_hidden_state, batch["audio_attention_mask"]),),
        batch_size,
    )
    return embeddings.numpy()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pretrained", default="out/ctal")
    parser.add_argument("--initial", default="out/ctal-init")
    parser.add_argument("--corpus_dir", default=None)
    parser.add_argument("--corpus_preset", default="default")
    parser.add_argument("--split", default="test")
    parser.add_argument("--speakers", type=int, default=10)
    parser.add_argument("--text_column", default="asr_text")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--output", type=Path, default=RESULTS / "ctal_speakers_tsne.png")
    args = parser.parse_args()
    torch.manual_seed(0)
    recorder = Recorder("ctal_speakers")
    data = load_splits(None, args.corpus_preset, args.corpus_dir)

    unseen = data["speaker_test"]
    for name, folder in (("pretrained", args.pretrained), ("initial", args.initial)):
        result = speaker_verification_eer(
            utterance_embeddings(folder, unseen, args.text_column, args.batch_size), unseen["speaker_id"]
        )
        recorder.record(
            model=name,
            folder=folder,
            split="speaker_test",
            embedding="masked mean of the audio stream",
            eer=result.eer,
            target_trials=result.target_trials,
            nontarget_trials=result.nontarget_trials,
        )

    split = data[args.split]
    chosen = [speaker for speaker, _ in Counter(split["speaker_id"]).most_common(args.speakers)]
    subset = split.filter(lambda s: s in chosen, input_columns=["speaker_id"])
    embeddings = utterance_embeddings(args.pretrained, subset, args.text_column, args.batch_size)

    from matplotlib import colormaps
    from sklearn.manifold import TSNE

    points = TSNE(n_components=2, perplexity=min(30, len(embeddings) - 1), random_state=0).fit_transform(
        embeddings
    )
    figure = new_figure(5.5, 5)
    axis = figure.subplots()
    speakers = np.array(subset["speaker_id"])
    colours = colormaps["tab10"]
    for index, speaker in enumerate(chosen):
        rows = speakers == speaker
        axis.scatter(points[rows, 0], points[rows, 1], s=18, color=colours(index % 10), label=speaker)
    axis.set_xticks([])
    axis.set_yticks([])
    axis.set_title(f"Pre-trained CTAL audio embeddings, t-SNE ({len(chosen)} speakers, {args.split})")
    axis.legend(fontsize=6, loc="best", markerscale=0.8)
    print(save_figure(figure, args.output))


if __name__ == "__main__":
    main()
