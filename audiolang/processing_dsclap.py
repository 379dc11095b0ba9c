"""Processor for DSCLAP: a `DsclapFeatureExtractor` for the audio and any tokenizer for the transcripts."""

from typing import Any

from transformers import PreTrainedTokenizerBase

from .feature_extraction_dsclap import DsclapFeatureExtractor
from .processing_audio_text import AudioTextProcessor

__all__ = ["DsclapProcessor"]


class DsclapProcessor(AudioTextProcessor):
    r"""Prepares paired (clip, transcript) batches for the DSCLAP models in one call.

    `processor(audio=clips, text=transcripts, sampling_rate=16000, return_tensors="pt")` returns the feature
    extractor's `input_values` / `audio_attention_mask` and the tokenizer's `input_ids` / `attention_mask`
    (/ `token_type_ids`), ready for `model(**inputs)`. Either modality may be given alone.

    Limits: transcripts are truncated to `max_text_length` tokens (special tokens included; 16 by default, the
    paper's value). Clips longer than the feature extractor's `max_audio_samples` raise a `ValueError` unless
    `truncate_audio=True`. When both modalities are given, their batch sizes must match.

    Args:
        feature_extractor ([`DsclapFeatureExtractor`]):
            The audio feature extractor.
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
        feature_extractor: DsclapFeatureExtractor,
        tokenizer: PreTrainedTokenizerBase,
        max_text_length: int = 16,
    ):
        super().__init__(feature_extractor, tokenizer, max_text_length)

    @classmethod
    def from_config(cls, config: Any, tokenizer: PreTrainedTokenizerBase) -> "DsclapProcessor":
        """A processor with the limits of `config` (a `DsclapConfig`, or any config with `max_audio_samples` and
        `max_text_length`, e.g. a `TurboConfig`)."""
        feature_extractor = DsclapFeatureExtractor(max_audio_samples=config.max_audio_samples)
        return cls(feature_extractor, tokenizer, max_text_length=config.max_text_length)


# `save_pretrained` copies this module and its flat siblings next to the checkpoint (`trust_remote_code=True`).
DsclapProcessor.register_for_auto_class("AutoProcessor")
