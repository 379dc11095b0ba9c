"""Data: the embedded in-car corpus builder and ASR back-ends."""

from .asr import (
    ASRBackend,
    FasterWhisperASR,
    PocketSphinxASR,
    TransformersASR,
    WhisperASR,
    build_pocketsphinx_lm,
    load_asr,
)
from .corpus import (
    CORPUS_PRESETS,
    SPLITS,
    CorpusConfig,
    build_corpus,
    corpus_dir,
    corpus_features,
    corpus_info,
    corpus_statistics,
    format_statistics,
    load_corpus,
)
from .templates import DIRECTED_NAMES, EMOTIONS, INTENTS

__all__ = [
    "ASRBackend",
    "CORPUS_PRESETS",
    "CorpusConfig",
    "DIRECTED_NAMES",
    "EMOTIONS",
    "FasterWhisperASR",
    "INTENTS",
    "PocketSphinxASR",
    "SPLITS",
    "TransformersASR",
    "WhisperASR",
    "build_corpus",
    "build_pocketsphinx_lm",
    "corpus_dir",
    "corpus_features",
    "corpus_info",
    "corpus_statistics",
    "format_statistics",
    "load_asr",
    "load_corpus",
]
