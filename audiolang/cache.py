"""Where audiolang caches what it builds and converts: one root, ``$AUDIOLANG_CACHE``, else
``$XDG_CACHE_HOME/audiolang``, else ``~/.cache/audiolang``, with a folder per kind (``corpus``, ``whisper``).

A leaf module (it imports nothing from audiolang), so that the corpus builder and the model converters can both use
it without importing each other.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "cache_root"]


def cache_root() -> Path:
    """The cache root, read from the environment at each call (so that tests and users can move it)."""
    return Path(
        os.environ.get("AUDIOLANG_CACHE")
        or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "audiolang")
    )


def cache_dir(kind: str) -> Path:
    """The cache folder of one kind of artefact, e.g. ``cache_dir("corpus")``; not created here."""
    return cache_root() / kind
