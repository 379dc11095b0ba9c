"""Processor for lrat: CTAL's front end, which the paper adopts unchanged (160-dim log-mel + delta frames of 50 ms every
12.5 ms, and RoBERTa-style byte-level BPE text)."""

from .processing_ctal import CtalProcessor

__all__ = ["LratProcessor"]


class LratProcessor(CtalProcessor):
    r"""Prepares (clip, transcript) batches for the lrat models in one call: a `CtalFeatureExtractor` for the audio
    and a byte-level BPE tokenizer (e.g. from `train_ctal_tokenizer`) for the text.

    `processor(audio=clips, text=transcripts, sampling_rate=16000, return_tensors="pt")` returns `input_features`
    `(batch, frames, 160)` / `audio_attention_mask` and `input_ids` (`<s> ... </s>`) / `attention_mask`. Either
    modality may be given alone (unpaired pre-training data has only one). Limits and arguments are those of
    [`CtalProcessor`]; `LratProcessor.from_config(lrat_config, tokenizer)` stays within an `LratConfig`'s limits.

    Example:

    ```python
    >>> from audiolang import CtalFeatureExtractor, LratProcessor, train_ctal_tokenizer
    >>> processor = LratProcessor(CtalFeatureExtractor(), train_ctal_tokenizer(transcripts, vocab_size=8000))
    >>> inputs = processor(audio=[clip], text=["open the window"], sampling_rate=16000, return_tensors="pt")
    ```
    """


# `save_pretrained` copies this module and its flat siblings next to the checkpoint (`trust_remote_code=True`).
LratProcessor.register_for_auto_class("AutoProcessor")
