"""audiolang: Transformers-native audio-and-language pre-training for spoken-language understanding.

Importing the package registers every model family with transformers' Auto classes. Everything else (the corpus
builder, ASR back-ends, training and evaluation helpers, the Hub tooling) is loaded on first use, like
transformers' own lazy top level, so that someone who only loads a model pays for torch and transformers and
nothing more (librosa, scikit-learn, datasets and evaluate stay unimported). `benchmarks/bench_import.py` measures it.
"""

from __future__ import annotations

import importlib
from typing import Any

import transformers

__version__ = "0.1.0"

__all__: list[str] = []


def _register_family(config_class: type, *classes: type) -> None:
    """Register a family's config with `AutoConfig` and each class with the Auto class it names.

    The Auto class of each class is the one its module already declares with `register_for_auto_class` (what a
    saved folder's `auto_map` lists for `trust_remote_code=True`): one declaration serves both ways of loading.
    """
    transformers.AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    for cls in classes:
        getattr(transformers, cls._auto_class).register(config_class, cls, exist_ok=True)


# ---------------------------------------------------------------------------------------------------------------
# Shared building blocks (flat sibling modules: `save_pretrained` copies them next to a checkpoint).
# ---------------------------------------------------------------------------------------------------------------
from .audio_utils import check_batch_sizes, validate_raw_audio, validate_sampling_rate  # noqa: E402
from .layers import (  # noqa: E402
    AttentionPooling,
    InputEmbeddings,
    MultiHeadAttention,
    PredictionHead,
    ReferredTransformerLayer,
    TransformerEncoderLayer,
    key_padding_bias,
    run_layers,
)
from .losses import (  # noqa: E402
    DsclapLossOutput,
    TurboLossOutput,
    distributed_rank_and_world_size,
    dsclap_loss,
    gather_with_grad,
    global_info_nce,
    hard_negative_indices,
    hard_negative_matching_loss,
    info_nce,
    info_nce_from_logits,
    masked_l1_loss,
    masked_lm_loss,
    orthogonality_loss,
    sequence_classification_loss,
    symmetric_info_nce,
    turbo_loss,
)
from .pooling import masked_max_pool, masked_mean_pool  # noqa: E402
from .whisper_encoder import VariableLengthWhisperEncoder  # noqa: E402

__all__ += [
    "AttentionPooling",
    "DsclapLossOutput",
    "InputEmbeddings",
    "MultiHeadAttention",
    "PredictionHead",
    "ReferredTransformerLayer",
    "TransformerEncoderLayer",
    "TurboLossOutput",
    "VariableLengthWhisperEncoder",
    "check_batch_sizes",
    "distributed_rank_and_world_size",
    "dsclap_loss",
    "gather_with_grad",
    "global_info_nce",
    "hard_negative_indices",
    "hard_negative_matching_loss",
    "info_nce",
    "info_nce_from_logits",
    "key_padding_bias",
    "masked_l1_loss",
    "masked_lm_loss",
    "masked_max_pool",
    "masked_mean_pool",
    "orthogonality_loss",
    "run_layers",
    "sequence_classification_loss",
    "symmetric_info_nce",
    "turbo_loss",
    "validate_raw_audio",
    "validate_sampling_rate",
]

# ---------------------------------------------------------------------------------------------------------------
# Model families: one block each (imports, registration, exported names). Imported eagerly because the Auto
# registrations need the classes themselves.
# ---------------------------------------------------------------------------------------------------------------

# --- dsclap ---
from .configuration_dsclap import DSCLAP_CLASSIFIER_INPUTS, DSCLAP_PRESETS, DsclapConfig  # noqa: E402
from .feature_extraction_dsclap import DsclapFeatureExtractor, DsclapWhisperFeatureExtractor  # noqa: E402
from .modeling_dsclap import (  # noqa: E402
    DsclapForSequenceClassification,
    DsclapModel,
    DsclapOutput,
    DsclapPreTrainedModel,
    DsclapSequenceClassifierOutput,
)
from .processing_dsclap import DsclapProcessor  # noqa: E402

_register_family(
    DsclapConfig, DsclapModel, DsclapForSequenceClassification, DsclapFeatureExtractor, DsclapProcessor
)
__all__ += [
    "DSCLAP_CLASSIFIER_INPUTS",
    "DSCLAP_PRESETS",
    "DsclapConfig",
    "DsclapFeatureExtractor",
    "DsclapForSequenceClassification",
    "DsclapModel",
    "DsclapWhisperFeatureExtractor",
    "DsclapOutput",
    "DsclapPreTrainedModel",
    "DsclapProcessor",
    "DsclapSequenceClassifierOutput",
]

# --- turbo ---
from .configuration_turbo import TURBO_OBJECTIVES, TURBO_PRESETS, TurboConfig  # noqa: E402
from .modeling_turbo import (  # noqa: E402
    TurboForSequenceClassification,
    TurboModel,
    TurboOutput,
    TurboPreTrainedModel,
    TurboSequenceClassifierOutput,
)
from .processing_turbo import TurboProcessor  # noqa: E402

_register_family(
    TurboConfig, TurboModel, TurboForSequenceClassification, DsclapFeatureExtractor, TurboProcessor
)
__all__ += [
    "TURBO_OBJECTIVES",
    "TURBO_PRESETS",
    "TurboConfig",
    "TurboForSequenceClassification",
    "TurboModel",
    "TurboOutput",
    "TurboPreTrainedModel",
    "TurboProcessor",
    "TurboSequenceClassifierOutput",
]

# --- ctal ---
from .configuration_ctal import CTAL_PRESETS, CtalConfig  # noqa: E402
from .feature_extraction_ctal import CtalFeatureExtractor  # noqa: E402
from .modeling_ctal import (  # noqa: E402
    CtalForPreTraining,
    CtalForPreTrainingOutput,
    CtalForSequenceClassification,
    CtalForXVector,
    CtalModel,
    CtalModelOutput,
    CtalPreTrainedModel,
    CtalSequenceClassifierOutput,
    CtalXVectorOutput,
)
from .processing_ctal import CtalProcessor  # noqa: E402

_register_family(
    CtalConfig,
    CtalModel,
    CtalForPreTraining,
    CtalForSequenceClassification,
    CtalForXVector,
    CtalFeatureExtractor,
    CtalProcessor,
)
__all__ += [
    "CTAL_PRESETS",
    "CtalConfig",
    "CtalFeatureExtractor",
    "CtalForPreTraining",
    "CtalForPreTrainingOutput",
    "CtalForSequenceClassification",
    "CtalForXVector",
    "CtalModel",
    "CtalModelOutput",
    "CtalPreTrainedModel",
    "CtalProcessor",
    "CtalSequenceClassifierOutput",
    "CtalXVectorOutput",
]

# --- lrat (CTAL's front end: its feature extractor and byte-level BPE tokenizer) ---
from .configuration_lrat import LRAT_PRESETS, LratConfig  # noqa: E402
from .modeling_lrat import (  # noqa: E402
    LratForPreTraining,
    LratForPreTrainingOutput,
    LratForSequenceClassification,
    LratForXVector,
    LratModel,
    LratModelOutput,
    LratPreTrainedModel,
    LratSequenceClassifierOutput,
    LratTranslationOutput,
    LratXVectorOutput,
)
from .processing_lrat import LratProcessor  # noqa: E402

_register_family(
    LratConfig,
    LratModel,
    LratForPreTraining,
    LratForSequenceClassification,
    LratForXVector,
    CtalFeatureExtractor,
    LratProcessor,
)
__all__ += [
    "LRAT_PRESETS",
    "LratConfig",
    "LratForPreTraining",
    "LratForPreTrainingOutput",
    "LratForSequenceClassification",
    "LratForXVector",
    "LratModel",
    "LratModelOutput",
    "LratPreTrainedModel",
    "LratProcessor",
    "LratSequenceClassifierOutput",
    "LratTranslationOutput",
    "LratXVectorOutput",
]

# --- pipelines: `import audiolang` registers "audio-text-classification" with transformers' `pipeline()` ----------
from .pipelines import (  # noqa: E402
    AudioTextClassificationPipeline,
    load_saved_asr,
    save_asr_config,
    save_custom_pipeline,
    save_inference_asr,
    saved_asr_config,
    saved_inference_asr_config,
)

__all__ += [
    "AudioTextClassificationPipeline",
    "load_saved_asr",
    "save_asr_config",
    "save_custom_pipeline",
    "save_inference_asr",
    "saved_asr_config",
    "saved_inference_asr_config",
]

# ---------------------------------------------------------------------------------------------------------------
# Loaded on first use: `{module (relative to this package): names it exports at the top level}`. The modules
# themselves (`audiolang.data`, `audiolang.training`, ...) are reachable as attributes too.
# ---------------------------------------------------------------------------------------------------------------
_LAZY_IMPORTS: dict[str, tuple[str, ...]] = {
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
    "baselines": ("TfidfBaselineOutput", "tfidf_baseline", "tfidf_task_metrics"),
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
__all__ += sorted(_NAME_TO_MODULE)


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
