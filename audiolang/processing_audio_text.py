"""What the joint audio+text processors share: one `__call__` (tokenizer + feature extractor, validated, batch sizes
checked) and one set of transcript checks.

A flat sibling of the modeling modules (imports nothing from `audiolang`), so that it travels with a checkpoint
loaded through `trust_remote_code=True`.
"""

from typing import Any

from transformers import BatchFeature, PreTrainedTokenizerBase
from transformers.processing_utils import ProcessorMixin
from transformers.utils import TensorType

from .audio_utils import check_batch_sizes

__all__ = ["AudioTextProcessor", "validate_text"]


class AudioTextProcessor(ProcessorMixin):
    r"""A feature extractor for the audio and a tokenizer for the transcripts, called together.

    `processor(audio=clips, text=transcripts, sampling_rate=16000, return_tensors="pt")` returns the feature
    extractor's outputs (with the audio padding mask `audio_attention_mask`) and the tokenizer's (`input_ids`,
    `attention_mask`, ...). Either modality may be given alone; when both are, their batch sizes must match.
    Transcripts are truncated to `max_text_length` tokens (special tokens included).

    Args:
        feature_extractor: The family's feature extractor; it must return `audio_attention_mask`.
        tokenizer ([`PreTrainedTokenizerBase`]): The text encoder's tokenizer.
        max_text_length (`int`): Token limit for transcripts.
    """

    def __init__(self, feature_extractor: Any, tokenizer: PreTrainedTokenizerBase, max_text_length: int):
        if max_text_length <= 0:
            raise ValueError(f"`max_text_length` must be positive, got {max_text_length}.")
        self.max_text_length = max_text_length
        super().__init__(feature_extractor, tokenizer)

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
                the feature extractor's limit and text to `max_text_length` (static shapes).
            truncate_audio: Cut clips longer than the feature extractor's limit instead of raising.
            max_text_length: Override of the processor's token limit for this call.
            return_tensors: `"pt"`, `"np"`, or `None` for lists.
        """
        if audio is None and text is None:
            raise ValueError("Pass `audio`, `text` or both.")
        data: dict[str, Any] = {}
        if text is not None:
            texts = validate_text(text)
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
                check_batch_sizes(len(audio_inputs["audio_attention_mask"]), len(data["input_ids"]))
            data.update(audio_inputs)
        return BatchFeature(data=data, tensor_type=return_tensors)


def validate_text(text: str | list[str]) -> list[str]:
    """The transcripts as a list, or a `ValueError` naming what is wrong (type, empty list, empty transcript, text
    that is not valid Unicode)."""
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
        name = f"text[{index}]" if len(texts) > 1 else "text"
        if not item.strip():
            raise ValueError(
                f"`{name}` is empty: drop rows whose transcript is empty (e.g. where the ASR found no speech); "
                f"empty transcripts all embed alike and become false negatives of each other."
            )
        try:
            item.encode("utf-8")
        except UnicodeEncodeError as error:
            # Lone surrogates (text decoded with errors="surrogateescape", or cut inside a UTF-16 pair): the
            # tokenizers would fail with a TypeError that names nothing.
            raise ValueError(
                f"`{name}` is not valid Unicode: {error.object[error.start : error.end]!r} at character {error.start} "
                "is a lone surrogate. Decode the transcripts with the right encoding, or clean them, e.g. "
                "`text.encode('utf-8', 'replace').decode('utf-8')`."
            ) from None
    return list(texts)
