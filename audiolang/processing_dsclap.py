"""Processor for DSCLAP: the audio tower's feature extractor (`DsclapFeatureExtractor` for raw-waveform encoders,
`DsclapWhisperFeatureExtractor` for Whisper) and any tokenizer for the transcripts."""

from typing import Any

from transformers import PreTrainedConfig, PreTrainedTokenizerBase

from .feature_extraction_dsclap import DsclapFeatureExtractor, DsclapWhisperFeatureExtractor
from .processing_audio_text import AudioTextProcessor

__all__ = ["DsclapProcessor", "audio_feature_extractor"]


class DsclapProcessor(AudioTextProcessor):
    r"""Prepares paired (clip, transcript) batches for the DSCLAP models in one call.

    `processor(audio=clips, text=transcripts, sampling_rate=16000, return_tensors="pt")` returns the feature
    extractor's audio (`input_values` waveforms, or `input_features` log-mel spectrograms for a Whisper audio
    encoder) with its padding mask `audio_attention_mask` (samples, or 10 ms frames), and the tokenizer's
    `input_ids` / `attention_mask` (/ `token_type_ids`), ready for `model(**inputs)`. Either modality may be given
    alone. A batch is padded to its longest clip only, and a clip gets the same features alone and in a batch.

    Limits: transcripts are truncated to `max_text_length` tokens (special tokens included; 16 by default, the
    paper's value). Clips longer than the feature extractor's `max_audio_samples` raise a `ValueError` unless
    `truncate_audio=True`. When both modalities are given, their batch sizes must match.

    Args:
        feature_extractor ([`DsclapFeatureExtractor`] or [`DsclapWhisperFeatureExtractor`]):
            The audio feature extractor, matching the model's audio encoder.
        tokenizer ([`PreTrainedTokenizerBase`]):
            Any tokenizer matching the text encoder (e.g. a BERT WordPiece tokenizer).
        max_text_length (`int`, *optional*, defaults to 16):
            Token limit for transcripts.

    Example:

    ```python
    >>> from transformers import AutoTokenizer
    >>> from audiolang import DsclapConfig, DsclapProcessor
    >>> processor = DsclapProcessor.from_config(DsclapConfig(), AutoTokenizer.from_pretrained("path/to/tokenizer"))
    >>> inputs = processor(audio=[clip], text=["open the window"], sampling_rate=16000, return_tensors="pt")
    ```
    """

    def __init__(
        self,
        feature_extractor: DsclapFeatureExtractor | DsclapWhisperFeatureExtractor,
        tokenizer: PreTrainedTokenizerBase,
        max_text_length: int = 16,
    ):
        super().__init__(feature_extractor, tokenizer, max_text_length)

    @classmethod
    def from_config(cls, config: Any, tokenizer: PreTrainedTokenizerBase) -> "DsclapProcessor":
        """A processor for the audio encoder and with the limits of `config` (a `DsclapConfig`, or any config with
        `audio_config`, `max_audio_samples` and `max_text_length`, e.g. a `TurboConfig`)."""
        feature_extractor = audio_feature_extractor(config.audio_config, config.max_audio_samples)
        return cls(feature_extractor, tokenizer, max_text_length=config.max_text_length)


def audio_feature_extractor(
    audio_config: PreTrainedConfig, max_audio_samples: int
) -> DsclapFeatureExtractor | DsclapWhisperFeatureExtractor:
    """The feature extractor for an audio encoder config: Whisper log-mel spectrograms with its number of mel bins
    for Whisper, raw waveforms for encoders that read `input_values` (wav2vec2, hubert, wavlm, ...)."""
    if audio_config.model_type == "whisper":
        return DsclapWhisperFeatureExtractor(
            feature_size=audio_config.num_mel_bins, max_audio_samples=max_audio_samples
        )
    # Imported here: `AutoModel` loads transformers' modeling code, which a processor otherwise never needs.
    from transformers import AutoModel

    main_input_name = AutoModel._model_mapping[type(audio_config)].main_input_name
    if main_input_name != "input_values":
        raise ValueError(
            f"No feature extractor for a {audio_config.model_type!r} audio encoder, which reads `{main_input_name}`: "
            "the dual encoders' processors take raw-waveform encoders (wav2vec2, hubert, wavlm, ...) and Whisper."
        )
    return DsclapFeatureExtractor(max_audio_samples=max_audio_samples)


# `save_pretrained` copies this module and its flat siblings next to the checkpoint (`trust_remote_code=True`).
DsclapProcessor.register_for_auto_class("AutoProcessor")
