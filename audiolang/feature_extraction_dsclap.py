"""Feature extractor for DSCLAP: validated, normalised, padded raw waveforms for wav2vec2-style encoders."""

from typing import Any

from transformers import BatchFeature, Wav2Vec2FeatureExtractor
from transformers.utils import PaddingStrategy, TensorType

from .audio_utils import validate_raw_audio

__all__ = ["DsclapFeatureExtractor"]


class DsclapFeatureExtractor(Wav2Vec2FeatureExtractor):
    r"""Turns raw 16 kHz mono waveforms into `input_values` and `audio_attention_mask` for [`DsclapModel`].

    It is wav2vec2's feature extractor (per-clip zero-mean unit-variance normalisation over the real samples, right
    padding with zeros) with three differences:

    - the padding mask is always returned, under the name `audio_attention_mask`, so that it can travel in the same
      batch as a tokenizer's `attention_mask` (the model pools audio over real frames with it);
    - every clip is validated first (`audiolang.audio_utils.validate_raw_audio`): a missing or wrong
      `sampling_rate`, an empty, silent or non-finite clip, or multi-channel audio raises a `ValueError` naming the
      clip;
    - clips longer than `max_audio_samples` raise instead of being cut silently; `truncation=True` keeps their
      first `max_length` (default: `max_audio_samples`) samples.

    Args:
        feature_size (`int`, *optional*, defaults to 1):
            Feature dimension of the waveform (1 for mono).
        sampling_rate (`int`, *optional*, defaults to 16000):
            The rate the model was trained on; inputs must match it.
        padding_value (`float`, *optional*, defaults to 0.0):
            Value of padded samples.
        do_normalize (`bool`, *optional*, defaults to `True`):
            Normalise each clip to zero mean and unit variance over its real samples.
        max_audio_samples (`int`, *optional*, defaults to 80000):
            Longest accepted clip (5 s at 16 kHz, the DSCLAP paper's limit), and the length that
            `padding="max_length"` pads to.
        return_attention_mask (`bool`, *optional*, defaults to `True`):
            Kept for compatibility with wav2vec2's saved configs; must be `True`.
    """

    model_input_names = ["input_values", "audio_attention_mask"]

    def __init__(
        self,
        feature_size: int = 1,
        sampling_rate: int = 16_000,
        padding_value: float = 0.0,
        do_normalize: bool = True,
        max_audio_samples: int = 80_000,
        return_attention_mask: bool = True,
        **kwargs: Any,
    ):
        if not return_attention_mask:
            raise ValueError(
                "`return_attention_mask=False` is not supported: DSCLAP pools audio over real frames only, which "
                "needs `audio_attention_mask`."
            )
        if max_audio_samples <= 0:
            raise ValueError(f"`max_audio_samples` must be positive, got {max_audio_samples}.")
        super().__init__(
            feature_size=feature_size,
            sampling_rate=sampling_rate,
            padding_value=padding_value,
            return_attention_mask=True,
            do_normalize=do_normalize,
            **kwargs,
        )
        if self.padding_side != "right":
            # wav2vec2's sample-to-frame mask conversion assumes the real samples come first.
            raise ValueError(f"`padding_side` must be 'right', got {self.padding_side!r}.")
        self.max_audio_samples = max_audio_samples

    def __call__(
        self,
        raw_speech: Any,
        sampling_rate: int | None = None,
        padding: bool | str | PaddingStrategy = "longest",
        max_length: int | None = None,
        truncation: bool = False,
        pad_to_multiple_of: int | None = None,
        return_tensors: str | TensorType | None = None,
        **kwargs: Any,
    ) -> BatchFeature:
        """Validate, normalise and pad one clip or a batch of clips.

        Args:
            raw_speech: One 1-D waveform, a list of them, or a `(batch, samples)` array (numpy or torch).
            sampling_rate: Required; must equal `self.sampling_rate`.
            padding: `"longest"` (default) pads to the longest clip of the batch; `"max_length"` pads to
                `max_length` (default `max_audio_samples`); `False` leaves clips unpadded (lists only).
            max_length: Target length for `padding="max_length"` and `truncation=True`.
            truncation: Keep only the first `max_length` (default `max_audio_samples`) samples of longer clips
                instead of raising.
            pad_to_multiple_of: Round the padded length up to a multiple of this.
            return_tensors: `"pt"` or `"np"`, or `None` for lists.

        Returns:
            `BatchFeature` with `input_values` `(batch, samples)` and `audio_attention_mask` `(batch, samples)`.
        """
        clips = validate_raw_audio(
            raw_speech,
            sampling_rate,
            expected_sampling_rate=self.sampling_rate,
            max_samples=None if truncation else self.max_audio_samples,
        )
        if max_length is None and (truncation or padding in ("max_length", PaddingStrategy.MAX_LENGTH)):
            max_length = self.max_audio_samples
        features = super().__call__(
            clips,
            sampling_rate=sampling_rate,
            padding=padding,
            max_length=max_length,
            truncation=truncation,
            pad_to_multiple_of=pad_to_multiple_of,
            return_attention_mask=True,
            return_tensors=return_tensors,
            **kwargs,
        )
        features["audio_attention_mask"] = features.pop("attention_mask")
        return features


# `save_pretrained` copies this module next to the checkpoint (`trust_remote_code=True`).
DsclapFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")
