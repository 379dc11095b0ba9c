"""Processor for Turbo: DSCLAP's processor (the audio tower's features + any tokenizer), with the same input
checks."""

from .processing_dsclap import DsclapProcessor

__all__ = ["TurboProcessor"]


class TurboProcessor(DsclapProcessor):
    r"""Prepares paired (clip, transcript) batches for the Turbo models: a [`DsclapFeatureExtractor`] for raw
    16 kHz waveforms (or a [`DsclapWhisperFeatureExtractor`] for a Whisper audio encoder) and the text encoder's
    tokenizer. Same call, limits and errors as [`DsclapProcessor`]
    (`TurboProcessor.from_config(turbo_config, tokenizer)` takes the limits of a `TurboConfig`); its own class so
    that a Turbo checkpoint names its processor.

    Example:

    ```python
    >>> from transformers import AutoTokenizer
    >>> from audiolang import TurboConfig, TurboProcessor
    >>> processor = TurboProcessor.from_config(TurboConfig(), AutoTokenizer.from_pretrained("path/to/tokenizer"))
    >>> inputs = processor(audio=[clip], text=["turn it up"], sampling_rate=16000, return_tensors="pt")
    ```
    """
