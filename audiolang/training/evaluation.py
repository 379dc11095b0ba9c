"""Evaluation helpers that need a model and data: audio-text retrieval of a contrastive dual encoder."""

from __future__ import annotations

from typing import Any

import torch
from datasets import Dataset
from torch.utils.data import DataLoader

from .collators import DataCollatorForAudioText


@torch.no_grad()
def embed_dataset(
    model: Any, processor: Any, dataset: Dataset, text_column: str, batch_size: int = 32
) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-normalised (audio, text) joint embeddings of every row, in order."""
    model.eval()
    collator = DataCollatorForAudioText(processor, text_column=text_column)
    audio, text = [], []
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collator):
        out = model(**batch.to(model.device), return_loss=False)
        audio.append(out.audio_embeds.float().cpu())
        text.append(out.text_embeds.float().cpu())
    return torch.cat(audio), torch.cat(text)


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
