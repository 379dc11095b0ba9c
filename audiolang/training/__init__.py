"""Training: building models, preparing and checking data, collators, the Trainer, evaluation, and the run scripts'
lifecycle (logging, resuming, output-folder guards)."""

from __future__ import annotations

from .audio_checks import BadAudio, check_audio, find_bad_audio, min_audio_samples
from .builders import (
    build_ctal,
    build_dsclap,
    build_from_tokenizer,
    check_model_family,
    parse_config_overrides,
)
from .collators import (
    AudioSpanMaskingOutput,
    DataCollatorForAudioText,
    DataCollatorForCtalPreTraining,
    mask_audio_spans,
)
from .data import (
    ROW_INDEX_COLUMN,
    TASKS,
    add_length_column,
    add_row_index,
    drop_empty_transcripts,
    ensure_transcripts,
    few_shot,
    k_fold_splits,
    load_splits,
    task_dataset,
)
from .evaluation import (
    collect_outputs,
    ctal_loss_parts,
    embed_dataset,
    evaluate_test_split,
    retrieval_metrics,
    speaker_verification_metrics,
)
from .lifecycle import (
    BAD_AUDIO_CHOICES,
    RunArguments,
    check_output_folder,
    configure_logging,
    last_complete_checkpoint,
    resume_checkpoint,
)
from .trainer import AudioTextTrainer, ModuleLearningRateTrainer

__all__ = [
    "AudioSpanMaskingOutput",
    "AudioTextTrainer",
    "BAD_AUDIO_CHOICES",
    "BadAudio",
    "DataCollatorForAudioText",
    "DataCollatorForCtalPreTraining",
    "ModuleLearningRateTrainer",
    "ROW_INDEX_COLUMN",
    "RunArguments",
    "TASKS",
    "add_length_column",
    "add_row_index",
    "build_ctal",
    "build_dsclap",
    "build_from_tokenizer",
    "parse_config_overrides",
    "check_audio",
    "check_model_family",
    "check_output_folder",
    "collect_outputs",
    "configure_logging",
    "ctal_loss_parts",
    "drop_empty_transcripts",
    "embed_dataset",
    "ensure_transcripts",
    "evaluate_test_split",
    "few_shot",
    "find_bad_audio",
    "k_fold_splits",
    "last_complete_checkpoint",
    "load_splits",
    "mask_audio_spans",
    "min_audio_samples",
    "resume_checkpoint",
    "retrieval_metrics",
    "speaker_verification_metrics",
    "task_dataset",
]
