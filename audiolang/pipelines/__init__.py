"""Custom transformers pipelines. Importing this package registers them with transformers' `PIPELINE_REGISTRY`, so
that `transformers.pipeline("audio-text-classification", model=...)` builds an [`AudioTextClassificationPipeline`].
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from transformers import AutoModelForSequenceClassification
from transformers.pipelines import PIPELINE_REGISTRY

from .audio_text_classification import (
    ASR_CONFIG_NAME,
    ASR_FOLDER,
    INFERENCE_ASR_FOLDER,
    TASK,
    AudioStream,
    AudioTextClassificationPipeline,
    load_audio_file,
    load_saved_asr,
    save_asr_config,
    save_custom_pipeline,
    save_inference_asr,
    saved_asr_config,
    saved_inference_asr_config,
)

__all__ = [
    "ASR_CONFIG_NAME",
    "ASR_FOLDER",
    "INFERENCE_ASR_FOLDER",
    "AudioStream",
    "AudioTextClassificationPipeline",
    "corpus_asr",
    "load_audio_file",
    "load_saved_asr",
    "save_asr_config",
    "save_custom_pipeline",
    "save_inference_asr",
    "saved_asr_config",
    "saved_inference_asr_config",
]

PIPELINE_REGISTRY.register_pipeline(
    TASK,
    pipeline_class=AudioTextClassificationPipeline,
    pt_model=AutoModelForSequenceClassification,
    type="multimodal",
)


def corpus_asr(corpus_path: str | os.PathLike) -> tuple[str, dict[str, Any]] | None:
    """How an audiolang corpus' `asr_text` was made, as `(spec, kwargs)` for `audiolang.load_asr` (and
    `save_asr_config`); None for a folder that is not an audiolang corpus, which records no recogniser.

    The corpus builder records its `CorpusConfig.asr` spec in the corpus info; pocketsphinx decodes with the domain
    language model it built from the corpus' pre-training text, kept in the corpus' `asr_lm/`.
    """
    from ..data.corpus import MARKER, corpus_info

    path = Path(corpus_path)
    if not (path / MARKER).is_file():
        return None
    spec = corpus_info(path)["config"]["asr"]
    lm_path, dict_path = path / "asr_lm" / "domain.arpa", path / "asr_lm" / "domain.dict"
    if spec == "pocketsphinx" and lm_path.is_file() and dict_path.is_file():
        return spec, {"lm_path": str(lm_path), "dict_path": str(dict_path)}
    return spec, {}
