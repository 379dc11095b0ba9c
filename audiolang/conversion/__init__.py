"""Conversion of models from other runtimes into transformers folders, and the models registry packages carry."""

from .packaged import PACKAGED_MODELS, resolve_pretrained
from .whisper import (
    PACKAGED_WHISPER,
    PackagedWhisper,
    convert_ctranslate2_whisper,
    packaged_ctranslate2_whisper_dir,
    packaged_whisper_path,
    read_ctranslate2_model,
    whisper_cache_dir,
)

__all__ = [
    "PACKAGED_MODELS",
    "PACKAGED_WHISPER",
    "PackagedWhisper",
    "convert_ctranslate2_whisper",
    "packaged_ctranslate2_whisper_dir",
    "packaged_whisper_path",
    "read_ctranslate2_model",
    "resolve_pretrained",
    "whisper_cache_dir",
]
