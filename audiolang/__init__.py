"""audiolang: Transformers-native audio-and-language pre-training for spoken-language understanding.

Importing the package registers every model family with transformers' Auto classes and `pipeline()`. Like
transformers' own top level, it imports nothing else up front, not even torch: each exported name loads its module on
first use, and each registration runs when transformers loads the Auto class it extends (`audiolang.registration`),
so `import audiolang` costs less than `import torch, transformers`, and a model's classes cost what transformers'
own modeling code does. `benchmarks/bench_import.py` measures it.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import registration

__version__ = "0.1.0"

# ---------------------------------------------------------------------------------------------------------------
# Loaded on first use: `{module (relative to this package): names it exports at the top level}`. The modules
# themselves (`audiolang.data`, `audiolang.training`, ...) are reachable as attributes too.
# ---------------------------------------------------------------------------------------------------------------
_LAZY_IMPORTS: dict[str, tuple[str, ...]] = {
    # Shared building blocks (flat sibling modules: `save_pretrained` copies them next to a checkpoint).
    "audio_utils": ("check_batch_sizes", "validate_raw_audio", "validate_sampling_rate"),
    "layers": (
        "AttentionPooling",
        "InputEmbeddings",
        "MultiHeadAttention",
        "PredictionHead",
        "ReferredTransformerLayer",
        "TransformerEncoderLayer",
        "key_padding_bias",
        "run_layers",
    ),
    "losses": (
        "DsclapLossOutput",
        "TurboLossOutput",
        "distributed_rank_and_world_size",
        "dsclap_loss",
        "gather_with_grad",
        "global_info_nce",
        "hard_negative_indices",
        "hard_negative_matching_loss",
        "info_nce",
        "info_nce_from_logits",
        "masked_l1_loss",
        "masked_lm_loss",
        "orthogonality_loss",
        "sequence_classification_loss",
        "symmetric_info_nce",
        "turbo_loss",
    ),
    "pooling": ("masked_max_pool", "masked_mean_pool"),
    "whisper_encoder": ("VariableLengthWhisperEncoder",),
    # The model families (`registration.FAMILY_CLASSES` lists what each registers with the Auto classes).
    "configuration_dsclap": ("DSCLAP_CLASSIFIER_INPUTS", "DSCLAP_PRESETS", "DsclapConfig"),
    "feature_extraction_dsclap": ("DsclapFeatureExtractor", "DsclapWhisperFeatureExtractor"),
    "modeling_dsclap": (
        "DsclapForSequenceClassification",
        "DsclapModel",
        "DsclapOutput",
        "DsclapPreTrainedModel",
        "DsclapSequenceClassifierOutput",
    ),
    "processing_dsclap": ("DsclapProcessor",),
    "configuration_turbo": ("TURBO_OBJECTIVES", "TURBO_PRESETS", "TurboConfig"),
    "modeling_turbo": (
        "TurboForSequenceClassification",
        "TurboModel",
        "TurboOutput",
        "TurboPreTrainedModel",
        "TurboSequenceClassifierOutput",
    ),
    "processing_turbo": ("TurboProcessor",),
    "configuration_ctal": ("CTAL_PRESETS", "CtalConfig"),
    "feature_extraction_ctal": ("CtalFeatureExtractor",),
    "modeling_ctal": (
        "CtalForPreTraining",
        "CtalForPreTrainingOutput",
        "CtalForSequenceClassification",
        "CtalForXVector",
        "CtalModel",
        "CtalModelOutput",
        "CtalPreTrainedModel",
        "CtalSequenceClassifierOutput",
        "CtalXVectorOutput",
    ),
    "processing_ctal": ("CtalProcessor",),
    # LRAT uses CTAL's front end: its feature extractor and byte-level BPE tokenizer.
    "configuration_lrat": ("LRAT_PRESETS", "LratConfig"),
    "modeling_lrat": (
        "LratForPreTraining",
        "LratForPreTrainingOutput",
        "LratForSequenceClassification",
        "LratForXVector",
        "LratModel",
        "LratModelOutput",
        "LratPreTrainedModel",
        "LratSequenceClassifierOutput",
        "LratTranslationOutput",
        "LratXVectorOutput",
    ),
    "processing_lrat": ("LratProcessor",),
    # The "audio-text-classification" pipeline (registered with `pipeline()` when transformers loads it).
    "pipelines": (
        "AudioTextClassificationPipeline",
        "load_saved_asr",
        "save_asr_config",
        "save_custom_pipeline",
        "save_inference_asr",
        "saved_asr_config",
        "saved_inference_asr_config",
    ),
    # The embedded corpus builder (datasets, synthesis, pocketsphinx).
    "data": ("CORPUS_PRESETS", "CorpusConfig", "WhisperASR", "build_corpus", "load_asr", "load_corpus"),
    # CTranslate2 -> transformers conversion and the models that registry packages carry (Whisper, MiniLM).
    "conversion": (
        "convert_ctranslate2_whisper",
        "packaged_whisper_path",
        "read_ctranslate2_model",
        "resolve_pretrained",
    ),
    # CTAL's tokenizer training (datasets, tokenizers).
    "tokenization_ctal": ("CTAL_SPECIAL_TOKENS", "train_ctal_tokenizer"),
    # Building and training models: what the run scripts drive (datasets, the Trainer).
    "training": (
        "AudioTextTrainer",
        "AudioTextTrainingArguments",
        "DataCollatorForAudioText",
        "DataCollatorForCtalPreTraining",
        "DataCollatorForLratPreTraining",
        "LratArguments",
        "LratTrainer",
        "ModuleLearningRateTrainer",
        "build_ctal",
        "build_dsclap",
        "build_lrat",
        "check_audio",
        "ctal_loss_parts",
        "evaluate_test_split",
        "gradient_cached_backward",
        "k_fold_splits",
        "mask_audio_spans",
        "pretrain_lrat",
        "speaker_verification_metrics",
        "split_lrat_corpus",
    ),
    # Evaluation (scikit-learn, scipy).
    "metrics": ("make_compute_metrics", "mean_and_std", "speaker_verification_eer", "summarise_runs"),
    # Hub cards, widgets and Space folders (huggingface_hub).
    "hub": ("push_to_hub", "write_model_card", "write_space"),
    # Plots written next to the metrics (matplotlib).
    "plots": ("plot_confusion_matrix", "plot_det_roc", "plot_training_curves", "write_evaluation_plots"),
    # Linear probes of frozen representations (scikit-learn).
    "probing": ("probe_representations",),
    # The text-only TF-IDF baseline reported beside fine-tuned scores (scikit-learn).
    "baselines": ("TfidfBaselineOutput", "tfidf_baseline", "tfidf_split_metrics", "tfidf_task_metrics"),
}
_LAZY_SUBMODULES = (
    "app",
    "baselines",
    "conversion",
    "data",
    "hub",
    "metrics",
    "pipelines",
    "plots",
    "probing",
    "training",
)
_NAME_TO_MODULE = {name: module for module, names in _LAZY_IMPORTS.items() for name in names}
__all__ = sorted(_NAME_TO_MODULE)


def __getattr__(name: str) -> Any:
    # PEP 562: called only for names not found above, i.e. the lazy ones.
    if name in _NAME_TO_MODULE:
        value = getattr(importlib.import_module(f".{_NAME_TO_MODULE[name]}", __name__), name)
    elif name in _LAZY_SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_LAZY_SUBMODULES})


registration.install()
