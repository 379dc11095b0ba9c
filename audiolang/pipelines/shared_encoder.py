"""One Whisper encoder pass for both the speech recogniser and the classifier's audio tower.

A DSCLAP classifier whose audio tower is Whisper's encoder (frozen, e.g. the demo's tiny.en tower), run on raw audio
with a Whisper recogniser, would encode every clip twice: once in the recogniser's window (`WhisperASR`: the clip
followed by silence up to `min_window_s`, 10 s by default, no mask) and once alone in the tower (the clip's own frames,
padding masked). Here the recogniser's encoder runs once per window, and the tower reads the same pass:

- `encoder_sharing` compares the two encoders once, weight for weight: the convolution stem and position table must be
  equal, then the leading transformer layers that are equal are shared. A tower fine-tuned or pre-trained in its top
  layers (the pre-trained DSCLAP tower differs from tiny.en in its last layer and final norm) shares the layers below;
  the rest run on both branches from the shared hidden state.
- `transcribe_and_pool` transcribes through `WhisperASR.transcribe(..., encode=...)` (same windows, batches and
  repetition guard as the recogniser alone) and pools the tower's states of each window over the clip's own frames
  (`pool_audio_states`), which the classifier takes as `audio_pooler_output`.

What changes for the classifier: it hears the clip in the recogniser's window (followed by silence, attended to by
the encoder) instead of alone, so its audio embedding is not the two-pass one; docs/fast-inference.md gives the
measured label agreement. That is why the pipeline shares the pass only when asked (`share_encoder=True`).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["EncoderSharing", "encode_once", "encoder_sharing", "sharing_obstacle", "transcribe_and_pool"]

# What a Whisper encoder is made of, below its transformer layers: the convolution stem and the position table.
_STEM = ("conv1", "conv2", "embed_positions")
# Config fields that must agree for a shared hidden state to mean the same to both encoders.
_CONFIG_FIELDS = (
    "d_model",
    "num_mel_bins",
    "encoder_layers",
    "encoder_attention_heads",
    "max_source_positions",
)


@dataclass(frozen=True)
class EncoderSharing:
    """What two Whisper encoders share: the stem and the first `layers` transformer layers; `complete` when every
    layer and the final layer norm are equal too (the tower's states are the recogniser's)."""

    layers: int
    complete: bool


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    """Equal state dicts: the same keys, and tensors of the same dtype, shape and values (a quantised copy is not
    equal: its packed weights are not plain tensors)."""
    state_a, state_b = a.state_dict(), b.state_dict()
    return state_a.keys() == state_b.keys() and all(
        isinstance(state_a[k], torch.Tensor)
        and isinstance(state_b[k], torch.Tensor)
        and state_a[k].dtype == state_b[k].dtype
        and state_a[k].shape == state_b[k].shape
        and torch.equal(state_a[k], state_b[k])
        for k in state_a
    )


def encoder_sharing(recogniser_encoder: nn.Module, tower: nn.Module) -> EncoderSharing | None:
    """How much of `tower` is `recogniser_encoder`, compared weight for weight (once: the pipeline keeps the answer);
    None when they share nothing (another architecture or config, or another stem)."""
    for encoder in (recogniser_encoder, tower):
        if not all(hasattr(encoder, name) for name in (*_STEM, "layers", "layer_norm", "config")):
            return None
    if any(
        getattr(recogniser_encoder.config, f, None) != getattr(tower.config, f, None) for f in _CONFIG_FIELDS
    ):
        return None
    if not all(_same_weights(getattr(recogniser_encoder, n), getattr(tower, n)) for n in _STEM):
        return None
    shared = 0
    for mine, theirs in zip(recogniser_encoder.layers, tower.layers, strict=True):
        if not _same_weights(mine, theirs):
            break
        shared += 1
    complete = shared == len(tower.layers) and _same_weights(recogniser_encoder.layer_norm, tower.layer_norm)
    return EncoderSharing(layers=shared, complete=complete)


def encode_once(
    recogniser_encoder: nn.Module, tower: nn.Module, sharing: EncoderSharing, input_features: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """`(recogniser states, tower states)` of one window of log-mel features, the shared part computed once.

    The recogniser's encoder runs its own forward; the input of its first unshared module (layer `sharing.layers`, or
    the final layer norm) is captured with a pre-hook, and the tower's remaining layers and layer norm continue from
    it with the same arguments (the attention bias), so nothing of the encoder's forward is re-implemented here.
    """
    if sharing.complete:
        states = recogniser_encoder(input_features).last_hidden_state
        return states, states
    layers = recogniser_encoder.layers
    branch = layers[sharing.layers] if sharing.layers < len(layers) else recogniser_encoder.layer_norm
    captured: dict[str, Any] = {}

    def capture(module: nn.Module, args: tuple, kwargs: dict) -> None:
        captured["args"], captured["kwargs"] = args, kwargs

    handle = branch.register_forward_pre_hook(capture, with_kwargs=True)
    try:
        states = recogniser_encoder(input_features).last_hidden_state
    finally:
        handle.remove()
    hidden, *layer_args = captured["args"]
    if sharing.layers < len(layers):
        for layer in tower.layers[sharing.layers :]:
            hidden = layer(hidden, *layer_args, **captured["kwargs"])
    return states, tower.layer_norm(hidden)


def sharing_obstacle(recogniser: Any, model: Any) -> str | None:
    """Why `model` cannot read `recogniser`'s encoder pass, or None when it can (the weights are compared apart)."""
    from ..data.asr import WhisperASR

    if not isinstance(recogniser, WhisperASR):
        return f"the recogniser {recogniser!r} is not a transformers Whisper (`WhisperASR`)"
    if "audio_pooler_output" not in inspect.signature(model.forward).parameters:
        return f"{type(model).__name__} does not take a precomputed audio embedding (`audio_pooler_output`)"
    if getattr(model, "audio_layer_weights", None) is not None:
        return "the classifier pools a weighted sum of every audio layer (`use_weighted_layer_sum`)"
    if "audio" not in getattr(model, "_classifier_towers", ("audio",)):
        return (
            "the classifier does not read audio (`classifier_inputs='text'`): the recogniser alone encodes it"
        )
    return None


def transcribe_and_pool(
    recogniser: Any,
    model: Any,
    feature_extractor: Any,
    sharing: EncoderSharing,
    clips: list[np.ndarray],
    truncate_audio: bool = True,
) -> tuple[list[str], torch.Tensor]:
    """Transcribe `clips` with `recogniser` (a `WhisperASR`) and pool `model`'s audio tower over each clip's frames of
    the same encoder pass: `(transcripts, (clips, hidden size) audio embeddings)` for `model(audio_pooler_output=...)`.

    The clips are checked by the classifier's own validator, with `feature_extractor`'s limits, as its processor
    checks them on the two-pass path; with `truncate_audio` the classifier pools the first `max_audio_samples` of a
    longer clip, as it reads them on that path (the recogniser hears the whole clip either way).
    """
    from ..audio_utils import validate_raw_audio

    max_samples = feature_extractor.max_audio_samples
    validate_raw_audio(
        clips,
        feature_extractor.sampling_rate,
        expected_sampling_rate=feature_extractor.sampling_rate,
        max_samples=None if truncate_audio else max_samples,
        min_samples=getattr(feature_extractor, "min_samples", 1),
    )
    hop_length = recogniser.processor.feature_extractor.hop_length
    pooled: list[torch.Tensor | None] = [None] * len(clips)

    def encode(indices: list[int], input_features: torch.Tensor) -> torch.Tensor:
        states, tower_states = encode_once(recogniser.encoder, model.audio_model, sharing, input_features)
        # The clip's own frames, as the classifier's extractor counts them for the clip alone; the window's silence
        # after them is heard by the encoder but not pooled.
        frame_mask = torch.zeros(input_features.shape[0], input_features.shape[-1], dtype=torch.long)
        for row, index in enumerate(indices):
            frame_mask[row, : min(clips[index].size, max_samples) // hop_length] = 1
        rows = model.pool_audio_states(tower_states, frame_mask.to(tower_states.device))
        for row, index in enumerate(indices):
            pooled[index] = rows[row]
        return states

    with torch.inference_mode():
        transcripts = recogniser.transcribe(clips, feature_extractor.sampling_rate, encode=encode)
    return transcripts, torch.stack(pooled)
