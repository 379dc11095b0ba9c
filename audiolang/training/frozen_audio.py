"""A frozen audio tower's pooled output, computed once per clip for fine-tuning instead of once per clip and epoch.

With the audio tower frozen (`--freeze_audio_encoder`, the demo's recipe) and no dropout in it, its pooled output for
a clip is the same in every epoch: decoding the clip, its log-mel features and the tower's forward pass are the
bulk of a fine-tuning step, so the classifier trains on a cached `audio_pooler_output` column instead
(`DsclapForSequenceClassification(audio_pooler_output=...)`), the text tower and the head still training as before.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from datasets import Dataset, Sequence, Value
from torch import nn

from .evaluation import collect_outputs

logger = logging.getLogger(__name__)

AUDIO_POOLER_OUTPUT_COLUMN = "audio_pooler_output"


def frozen_audio_cache_blocker(model: Any) -> str | None:
    """Why `model`'s audio pooled output cannot be cached across epochs, or None when it can: the model must take
    `audio_pooler_output`, read the audio tower, and keep every audio parameter fixed with no dropout or layer
    drop in the tower (which would make its output differ from epoch to epoch)."""
    if "audio_pooler_output" not in inspect.signature(model.forward).parameters:
        return f"{type(model).__name__} takes no precomputed audio_pooler_output"
    if "audio" not in getattr(model, "_classifier_towers", ("audio",)):
        return "the classifier does not read the audio tower"
    audio_parameters = list(model.audio_model.parameters())
    if getattr(model, "audio_layer_weights", None) is not None:
        audio_parameters.append(model.audio_layer_weights)
    if any(parameter.requires_grad for parameter in audio_parameters):
        return "the audio tower trains (not --freeze_audio_encoder)"
    config = model.config.audio_config
    # What the tower draws at random in train mode: dropout layers, attention dropout (a float `dropout` attribute
    # of the attention modules), layer drop, and SpecAugment (wav2vec2-style towers).
    random_parts = {
        name or "audio_model": module.p if isinstance(module, nn.Dropout) else module.dropout
        for name, module in model.audio_model.named_modules()
        if (isinstance(module, nn.Dropout) and module.p > 0)
        or (isinstance(getattr(module, "dropout", None), float) and module.dropout > 0)
    }
    random_parts.update(
        {
            name: getattr(config, name)
            for name in ("layerdrop", "encoder_layerdrop")
            if getattr(config, name, 0) and getattr(config, name) > 0
        }
    )
    if getattr(config, "apply_spec_augment", False):
        random_parts.update(
            {
                name: getattr(config, name)
                for name in ("mask_time_prob", "mask_feature_prob")
                if getattr(config, name, 0) and getattr(config, name) > 0
            }
        )
    if random_parts:
        shown = dict(list(random_parts.items())[:3])
        return f"the audio tower is random in training ({shown}{', ...' if len(random_parts) > 3 else ''})"
    return None


def cache_frozen_audio(
    model: Any,
    processor: Any,
    dataset: Dataset,
    text_column: str,
    audio_column: str = "audio",
    batch_size: int = 32,
    progress: str | None = "frozen audio tower",
) -> Dataset:
    """`dataset` with an `audio_pooler_output` column: each clip's pooled output of `model`'s (frozen) audio tower,
    in eval mode, which `DataCollatorForAudioText` passes to the model instead of the audio. Check
    `frozen_audio_cache_blocker(model)` first."""
    (pooled,) = collect_outputs(
        model,
        processor,
        dataset,
        text_column,
        lambda output, batch: (output.audio_model_output.pooler_output,),
        batch_size=batch_size,
        audio_column=audio_column,
        progress=progress,
    )
    return dataset.add_column(
        AUDIO_POOLER_OUTPUT_COLUMN, pooled.numpy().tolist(), feature=Sequence(Value("float32"))
    )
