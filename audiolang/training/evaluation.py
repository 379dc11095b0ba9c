"""Evaluation helpers that need a model and data: outputs over a dataset, audio-text retrieval."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from datasets import Dataset
from torch.utils.data import DataLoader
from transformers import BatchFeature

from .collators import DataCollatorForAudioText


@torch.no_grad()
def collect_outputs(
    model: Any,
    processor: Any,
    dataset: Dataset,
    text_column: str,
    select: Callable[[Any, BatchFeature], tuple[torch.Tensor, ...]],
    batch_size: int = 32,
    audio_column: str = "audio",
    **model_kwargs: Any,
) -> tuple[torch.Tensor, ...]:
    """Run `model` in eval mode over every row of `dataset` (in order) and concatenate what `select(output,
    batch)` picks from each batch's output, as float32 CPU tensors."""
    model.eval()
    collator = DataCollatorForAudioText(processor, audio_column=audio_column, text_column=text_column)
    parts: list[tuple[torch.Tensor, ...]] = []
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collator):
        batch = batch.to(model.device)
        parts.append(tuple(t.float().cpu() for t in select(model(**batch, **model_kwargs), batch)))
    return tuple(torch.cat(column) for column in zip(*parts, strict=True))


def embed_dataset(
    model: Any, processor: Any, dataset: Dataset, text_column: str, batch_size: int = 32
) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-normalised (audio, text) joint embeddings of a contrastive dual encoder for every row, in order."""
    audio, text = collect_outputs(
        model,
        processor,
        dataset,
        text_column,
        lambda out, batch: (out.audio_embeds, out.text_embeds),
        batch_size,
        return_loss=False,
    )
    return audio, text


def retrieval_metrics(
    audio_embeds: torch.Tensor, text_embeds: torch.Tensor, ks: tuple[int, ...] = (1, 5)
) -> dict[str, float]:
    """Recall@k of audio->text and text->audio retrieval, row i's partner being row i.

    Rows with identical transcripts are different items: retrieving an equal transcript of another row
    counts as a miss, the strict convention.
    """
    if audio_embeds.shape != text_embeds.shape:
        raise ValueError(
            f"audio and text embeddings differ in shape: {tuple(audio_embeds.shape)} vs {tuple(text_embeds.shape)}"
        )
    sims = audio_embeds @ text_embeds.T
    target = torch.arange(sims.shape[0])
    metrics = {}
    for name, s in (("audio_to_text", sims), ("text_to_audio", sims.T)):
        # rank of the true partner: how many candidates score strictly higher
        rank = (s > s[target, target].unsqueeze(1)).sum(dim=1)
        for k in ks:
            metrics[f"{name}_r@{k}"] = float((rank < k).float().mean())
    return metrics
