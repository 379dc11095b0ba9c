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
    orthogonality_loss,
    symmetric_info_nce,
    turbo_loss,
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
    "TurboLossOutput",
    "check_batch_sizes",
    "distributed_rank_and_world_size",
    "dsclap_loss",
    "gather_with_grad",
    "global_info_nce",
    "hard_negative_indices",
    "hard_negative_matching_loss",
    "info_nce",
    "info_nce_from_logits",
    "masked_l1_loss",
    "masked_mean_pool",
    "orthogonality_loss",
    "symmetric_info_nce",
    "turbo_loss",
    "validate_raw_audio",
    "validate_sampling_rate",
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

AutoConfig.register(TurboConfig.model_type, TurboConfig, exist_ok=True)
AutoModel.register(TurboConfig, TurboModel, exist_ok=True)
AutoModelForSequenceClassification.register(TurboConfig, TurboForSequenceClassification, exist_ok=True)
AutoFeatureExtractor.register(TurboConfig, DsclapFeatureExtractor, exist_ok=True)
AutoProcessor.register(TurboConfig, TurboProcessor, exist_ok=True)

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
from transformers import AutoModelForAudioXVector, AutoModelForPreTraining  # noqa: E402

from .configuration_ctal import CTAL_PRESETS, CtalConfig  # noqa: E402
from .feature_extraction_ctal import CtalFeatureExtractor  # noqa: E402
from .layers import (  # noqa: E402
    AttentionPooling,
    MultiHeadAttention,
    ReferredTransformerLayer,
    TransformerEncoderLayer,
    key_padding_bias,
)
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
from .pooling import masked_max_pool  # noqa: E402

AutoConfig.register(CtalConfig.model_type, CtalConfig, exist_ok=True)
AutoModel.register(CtalConfig, CtalModel, exist_ok=True)
AutoModelForPreTraining.register(CtalConfig, CtalForPreTraining, exist_ok=True)
AutoModelForSequenceClassification.register(CtalConfig, CtalForSequenceClassification, exist_ok=True)
AutoModelForAudioXVector.register(CtalConfig, CtalForXVector, exist_ok=True)
AutoFeatureExtractor.register(CtalConfig, CtalFeatureExtractor, exist_ok=True)

__all__ += [
    "AttentionPooling",
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
    "CtalSequenceClassifierOutput",
    "CtalXVectorOutput",
    "MultiHeadAttention",
    "ReferredTransformerLayer",
    "TransformerEncoderLayer",
    "key_padding_bias",
    "masked_max_pool",
]

# --- ctal front end: processor and tokenizer training ---
from .processing_ctal import CtalProcessor  # noqa: E402
from .tokenization_ctal import CTAL_SPECIAL_TOKENS, train_ctal_tokenizer  # noqa: E402

__all__ += ["CTAL_SPECIAL_TOKENS", "CtalProcessor", "train_ctal_tokenizer"]

AutoProcessor.register(CtalConfig, CtalProcessor, exist_ok=True)
