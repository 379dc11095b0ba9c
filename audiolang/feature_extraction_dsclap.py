"""Feature extractors of the dual-encoder families (DSCLAP, Turbo): validated, padded inputs for their audio tower.

`DsclapFeatureExtractor` gives normalised raw waveforms for wav2vec2-style encoders, `DsclapWhisperFeatureExtractor`
Whisper log-mel spectrograms for a Whisper encoder. Both pad a batch to its longest clip only, return the padding
mask as `audio_attention_mask`, and give a clip the same features alone and inside a batch.
"""

from typing import Any

import numpy as np
from transformers import AutoFeatureExtractor, BatchFeature, Wav2Vec2FeatureExtractor, WhisperFeatureExtractor
from transformers.utils import PaddingStrategy, TensorType

from .audio_utils import validate_raw_audio

__all__ = ["DsclapFeatureExtractor", "DsclapWhisperFeatureExtractor"]


def _validated_clips(
    extractor: Any,
    raw_speech: Any,
    sampling_rate: int | None,
    padding: bool | str | PaddingStrategy,
    max_length: int | None,
    truncation: bool,
    min_samples: int = 1,
) -> tuple[list[np.ndarray], int | None]:
    """The clips of a feature extractor call, validated against its rate and `max_audio_samples` (unless it
    truncates), and the sample length that `padding="max_length"` and `truncation` use (`max_audio_samples` unless
    given)."""
    clips = validate_raw_audio(
        raw_speech,
        sampling_rate,
        expected_sampling_rate=extractor.sampling_rate,
        max_samples=None if truncation else extractor.max_audio_samples,
        min_samples=min_samples,
    )
    if max_length is None and (truncation or padding in ("max_length", PaddingStrategy.MAX_LENGTH)):
        max_length = extractor.max_audio_samples
    return clips, max_length


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
        clips, max_length = _validated_clips(self, raw_speech, sampling_rate, padding, max_length, truncation)
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


class DsclapWhisperFeatureExtractor(WhisperFeatureExtractor):
    r"""Turns raw 16 kHz mono waveforms into Whisper log-mel `input_features` and the frame mask
    `audio_attention_mask`, for DSCLAP and Turbo models with a Whisper audio encoder.

    It is Whisper's feature extractor with four differences:

    - no 30 s padding: a batch is padded to its longest clip (`padding="longest"`, the default); the model's
      `VariableLengthWhisperEncoder` masks the padding;
    - each clip's spectrogram is the one `WhisperFeatureExtractor` computes for that clip alone, unpadded, then
      padded with `padding_value`. Featurising the padded batch would not do: Whisper clamps each spectrogram 8 units
      below its maximum and its last STFT frames read past the clip's end, so a clip's features would depend on its
      batch;
    - the frame mask is always returned, as `audio_attention_mask`: a clip of `n` samples has `n // hop_length`
      frames (one per 10 ms);
    - every clip is validated first (`audiolang.audio_utils.validate_raw_audio`): a missing or wrong
      `sampling_rate`, an empty, silent or non-finite clip, multi-channel audio, a clip shorter than one STFT window
      (`n_fft` samples, 25 ms) or longer than `max_audio_samples` raises a `ValueError` naming the clip.

    Args:
        feature_size (`int`, *optional*, defaults to 80):
            Number of mel bins: the Whisper config's `num_mel_bins` (128 for large-v3).
        sampling_rate, hop_length, chunk_length, n_fft, padding_value, dither:
            As in `WhisperFeatureExtractor` (16 kHz, 10 ms hop, 30 s window, 25 ms STFT window, 0.0, no dither).
        max_audio_samples (`int`, *optional*, defaults to 80000):
            Longest accepted clip (5 s at 16 kHz, the DSCLAP paper's limit; at most `chunk_length` seconds, what
            Whisper's encoder reads), and the length that `padding="max_length"` pads to.
        return_attention_mask (`bool`, *optional*, defaults to `True`):
            Must be `True`: the models pool over real frames only.
    """

    model_input_names = ["input_features", "audio_attention_mask"]

    def __init__(
        self,
        feature_size: int = 80,
        sampling_rate: int = 16_000,
        hop_length: int = 160,
        chunk_length: int = 30,
        n_fft: int = 400,
        padding_value: float = 0.0,
        dither: float = 0.0,
        max_audio_samples: int = 80_000,
        return_attention_mask: bool = True,
        **kwargs: Any,
    ):
        if not return_attention_mask:
            raise ValueError(
                "`return_attention_mask=False` is not supported: the models pool audio over real frames only, which "
                "needs `audio_attention_mask`."
            )
        super().__init__(
            feature_size=feature_size,
            sampling_rate=sampling_rate,
            hop_length=hop_length,
            chunk_length=chunk_length,
            n_fft=n_fft,
            padding_value=padding_value,
            dither=dither,
            return_attention_mask=True,
            **kwargs,
        )
        if not 0 < max_audio_samples <= self.n_samples:
            raise ValueError(
                f"`max_audio_samples` must be in [1, {self.n_samples}] (Whisper's encoder reads at most "
                f"{chunk_length} s), got {max_audio_samples}."
            )
        self.max_audio_samples = max_audio_samples

    @property
    def min_samples(self) -> int:
        """The shortest clip this extractor takes: one STFT window, which gives two frames."""
        return self.n_fft

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
        """Validate clips, compute each one's log-mel spectrogram, and pad them to a batch.

        Args:
            raw_speech: One 1-D waveform, a list of them, or a `(batch, samples)` array (numpy or torch).
            sampling_rate: Required; must equal `self.sampling_rate`.
            padding: `"longest"` (default) pads to the longest clip of the batch; `"max_length"` pads to
                `max_length` (default `max_audio_samples`); `False` leaves the spectrograms unpadded (lists only).
            max_length: Target length in samples for `padding="max_length"` and `truncation=True`.
            truncation: Keep only the first `max_length` (default `max_audio_samples`) samples of longer clips
                instead of raising.
            pad_to_multiple_of: Round the padded number of frames up to a multiple of this.
            return_tensors: `"pt"` or `"np"`, or `None` for lists.
            kwargs: Passed to `WhisperFeatureExtractor.__call__` (e.g. `device`, `do_normalize`).

        Returns:
            `BatchFeature` with `input_features` `(batch, feature_size, frames)` and `audio_attention_mask`
            `(batch, frames)`.
        """
        clips, max_length = _validated_clips(
            self, raw_speech, sampling_rate, padding, max_length, truncation, min_samples=self.min_samples
        )
        if truncation:
            clips = [clip[:max_length] for clip in clips]
        whisper_features = super().__call__
        # Each clip alone, transposed to `(frames, mel bins)`: the layout `pad` pads along its first axis.
        spectrograms = [
            whisper_features(
                clip,
                sampling_rate=sampling_rate,
                padding="longest",
                truncation=False,
                return_attention_mask=False,
                return_tensors="np",
                **kwargs,
            )["input_features"][0].T
            for clip in clips
        ]
        padded = self.pad(
            BatchFeature({"input_features": spectrograms}),
            padding=padding,
            max_length=None if max_length is None else max_length // self.hop_length,
            pad_to_multiple_of=pad_to_multiple_of,
            return_attention_mask=True,
        )
        features = {
            "input_features": [
                np.ascontiguousarray(spectrogram.T) for spectrogram in padded["input_features"]
            ],
            "audio_attention_mask": list(padded["attention_mask"]),
        }
        return BatchFeature(features, tensor_type=return_tensors)


# `save_pretrained` copies this module next to the checkpoint (`trust_remote_code=True`).
DsclapWhisperFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")
# `AutoFeatureExtractor` (hence `AutoProcessor` and the pipelines) finds a saved extractor by its class name among the
# registered ones, which are keyed by config class; DsclapConfig's and TurboConfig's slot holds DsclapFeatureExtractor,
# so this one is registered under its name, which no config lookup can hit.
AutoFeatureExtractor.register(
    DsclapWhisperFeatureExtractor.__name__, DsclapWhisperFeatureExtractor, exist_ok=True
)
