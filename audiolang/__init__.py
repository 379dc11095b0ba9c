"""audiolang: Transformers-native audio-and-language pre-training for spoken-language understanding.

Importing the package registers every model family with transformers' Auto classes.
"""

__version__ = "0.1.0"

from .data import (
    CORPUS_PRESETS,
    CorpusConfig,
    build_corpus,
    load_corpus,
)

__all__ = [
    "CORPUS_PRESETS",
    "CorpusConfig",
    "build_corpus",
    "load_corpus",
]

# --- model families ---
# Each family's configuration/modeling/processing modules import only flat siblings, so that `save_pretrained`
# can copy them next to a checkpoint for `trust_remote_code=True`. Registering here is what makes
# `AutoModel.from_pretrained(folder)` & co. resolve `model_type` "dsclap" once `audiolang` is imported.
from transformers import (  # noqa: E402
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForSequenceClassification,
    AutoProcessor,
)

from .audio_utils import check_batch_sizes, validate_raw_audio, validate_sampling_rate  # noqa: E402
from .configuration_dsclap import DSCLAP_PRESETS, DsclapConfig  # noqa: E402
from .feature_extraction_dsclap import DsclapFeatureExtractor  # noqa: E402
from .losses import (  # noqa: E402
    DsclapLossOutput,
    distributed_rank_and_world_size,
    dsclap_loss,
    gather_with_grad,
    hard_negative_indices,
    hard_negative_matching_loss,
    info_nce,
    info_nce_from_logits,
    symmetric_info_nce,
)
from .modeling_dsclap import (  # noqa: E402
    DsclapForSequenceClassification,
    DsclapModel,
    DsclapOutput,
    DsclapPreTrainedModel,
    DsclapSequenceClassifierOutput,
)
from .pooling import masked_mean_pool  # noqa: E402
from .processing_dsclap import DsclapProcessor  # noqa: E402

AutoConfig.register(DsclapConfig.model_type, DsclapConfig, exist_ok=True)
AutoModel.register(DsclapConfig, DsclapModel, exist_ok=True)
AutoModelForSequenceClassification.register(DsclapConfig, DsclapForSequenceClassification, exist_ok=True)
AutoFeatureExtractor.register(DsclapConfig, DsclapFeatureExtractor, exist_ok=True)
AutoProcessor.register(DsclapConfig, DsclapProcessor, exist_ok=True)

__all__ += [
    "DSCLAP_PRESETS",
    "DsclapConfig",
    "DsclapFeatureExtractor",
    "DsclapForSequenceClassification",
    "DsclapLossOutput",
    "DsclapModel",
    "DsclapOutput",
    "DsclapPreTrainedModel",
    "DsclapProcessor",
    "DsclapSequenceClassifierOutput",
    "check_batch_sizes",
    "distributed_rank_and_world_size",
    "dsclap_loss",
    "gather_with_grad",
    "hard_negative_indices",
    "hard_negative_matching_loss",
    "info_nce",
    "info_nce_from_logits",
    "masked_mean_pool",
    "symmetric_info_nce",
    "validate_raw_audio",
    "validate_sampling_rate",
]
