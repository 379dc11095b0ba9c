"""Processor for CTAL: a `CtalFeatureExtractor` for the audio and a byte-level BPE (RoBERTa) tokenizer for the text."""

from transformers import PreTrainedTokenizerBase

from .configuration_ctal import CtalConfig
from .feature_extraction_ctal import CtalFeatureExtractor
from .processing_audio_text import AudioTextProcessor

__all__ = ["CtalProcessor"]

DEFAULT_MAX_TEXT_LENGTH = 128


class CtalProcessor(AudioTextProcessor):
    r"""Prepares paired (clip, transcript) batches for the CTAL models in one call.

    `processor(audio=clips, text=transcripts, sampling_rate=16000, return_tensors="pt")` returns the feature
    extractor's `input_features` `(batch, frames, 160)` / `audio_attention_mask` and the tokenizer's `input_ids`
    (`<s> ... </s>`) / `attention_mask`, ready for `model(**inputs)`. Either modality may be given alone.

    Limits: transcripts are truncated to `max_text_length` tokens (special tokens included; 128 by default). Clips
    longer than the feature extractor's `max_audio_frames` (30 s by default) raise a `ValueError` unless
    `truncate_audio=True`. When both modalities are given, their batch sizes must match.

    Args:
        feature_extractor ([`CtalFeatureExtractor`]):
            The log-mel + delta feature extractor.
        tokenizer ([`PreTrainedTokenizerBase`]):
            The text stream's tokenizer: a byte-level BPE `RobertaTokenizerFast`, e.g. from `train_ctal_tokenizer`.
        max_text_length (`int`, *optional*, defaults to 128):
            Token limit for transcripts.

    Example:

    ```python
    >>> from audiolang import CtalFeatureExtractor, CtalProcessor, train_ctal_tokenizer
    >>> tokenizer = train_ctal_tokenizer(transcripts, vocab_size=8000)
    >>> processor = CtalProcessor(CtalFeatureExtractor(), tokenizer)
    >>> inputs = processor(audio=[clip], text=["open the window"], sampling_rate=16000, return_tensors="pt")
    ```
    """

    def __init__(
        self,
        feature_extractor: CtalFeatureExtractor,
        tokenizer: PreTrainedTokenizerBase,
        max_text_length: int = DEFAULT_MAX_TEXT_LENGTH,
    ):
        super().__init__(feature_extractor, tokenizer, max_text_length)

    @classmethod
    def from_config(cls, config: CtalConfig, tokenizer: PreTrainedTokenizerBase) -> "CtalProcessor":
        """A processor within the limits of `config`: its `max_audio_frames`, and at most
        `max_position_embeddings` tokens (the model raises beyond them)."""
        feature_extractor = CtalFeatureExtractor(max_audio_frames=config.max_audio_frames)
        max_text_length = min(DEFAULT_MAX_TEXT_LENGTH, config.max_position_embeddings)
        return cls(feature_extractor, tokenizer, max_text_length=max_text_length)


# `save_pretrained` copies this module and its flat siblings next to the checkpoint (`trust_remote_code=True`).
CtalProcessor.register_for_auto_class("AutoProcessor")
