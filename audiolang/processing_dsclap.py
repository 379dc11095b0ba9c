"""Processor for DSCLAP: a `DsclapFeatureExtractor` for the audio and any tokenizer for the transcripts."""

from typing import Any

from transformers import BatchFeature, PreTrainedTokenizerBase
from transformers.processing_utils import ProcessorMixin
from transformers.utils import TensorType

from .audio_utils import check_batch_sizes
from .feature_extraction_dsclap import DsclapFeatureExtractor

__all__ = ["DsclapProcessor"]


class DsclapProcessor(ProcessorMixin):
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
        if max_text_length <= 0:
            raise ValueError(f"`max_text_length` must be positive, got {max_text_length}.")
        self.max_text_length = max_text_length
        super().__init__(feature_extractor, tokenizer)

    @classmethod
    def from_config(cls, config: Any, tokenizer: PreTrainedTokenizerBase) -> "DsclapProcessor":
        """A processor with the limits of `config` (a `DsclapConfig`, or any config with `max_audio_samples` and
        `max_text_length`, e.g. a `TurboConfig`)."""
        feature_extractor = DsclapFeatureExtractor(max_audio_samples=config.max_audio_samples)
        return cls(feature_extractor, tokenizer, max_text_length=config.max_text_length)

    def __call__(
        self,
        audio: Any = None,
        text: str | list[str] | None = None,
        sampling_rate: int | None = None,
        padding: bool | str = "longest",
        truncate_audio: bool = False,
        max_text_length: int | None = None,
        return_tensors: str | TensorType | None = None,
    ) -> BatchFeature:
        """Process clips and/or transcripts.

        Args:
            audio: One 1-D waveform, a list of them, or a `(batch, samples)` array, at `sampling_rate`.
            text: One transcript or a list of transcripts, one per clip.
            sampling_rate: Required with `audio`; must equal the feature extractor's rate (16 kHz).
            padding: `"longest"` (default) pads each modality to its longest item; `"max_length"` pads audio to
                `max_audio_samples` and text to `max_text_length` (static shapes).
            truncate_audio: Cut clips longer than `max_audio_samples` instead of raising.
            max_text_length: Override of the processor's token limit for this call.
            return_tensors: `"pt"`, `"np"`, or `None` for lists.
        """
        if audio is None and text is None:
            raise ValueError("Pass `audio`, `text` or both.")
        data: dict[str, Any] = {}
        if text is not None:
            texts = _validate_text(text)
            text_inputs = self.tokenizer(
                texts,
                padding=padding,
                truncation=True,
                max_length=max_text_length or self.max_text_length,
                return_tensors=return_tensors,
            )
            data.update(text_inputs)
        if audio is not None:
            audio_inputs = self.feature_extractor(
                audio,
                sampling_rate=sampling_rate,
                padding=padding,
                truncation=truncate_audio,
                return_tensors=return_tensors,
            )
            if text is not None:
                check_batch_sizes(len(audio_inputs["input_values"]), len(data["input_ids"]))
            data.update(audio_inputs)
        return BatchFeature(data=data, tensor_type=return_tensors)


def _validate_text(text: str | list[str]) -> list[str]:
    texts = [text] if isinstance(text, str) else text
    if not isinstance(texts, (list, tuple)):
        raise ValueError(f"`text` must be a string or a list of strings, got {type(text).__name__}.")
    wrong = sorted({type(item).__name__ for item in texts if not isinstance(item, str)})
    if wrong:
        raise ValueError(
            f"`text` must be a string or a list of strings, got a list containing {', '.join(wrong)}."
        )
    if len(texts) == 0:
        raise ValueError("`text` is an empty list: pass at least one transcript.")
    for index, item in enumerate(texts):
        if not item.strip():
            name = f"text[{index}]" if len(texts) > 1 else "text"
            raise ValueError(
                f"`{name}` is empty: drop rows whose transcript is empty (e.g. where the ASR found no speech); "
                f"empty transcripts all embed alike and become false negatives of each other."
            )
    return list(texts)


# `save_pretrained` copies this module and its flat siblings next to the checkpoint (`trust_remote_code=True`).
DsclapProcessor.register_for_auto_class("AutoProcessor")
