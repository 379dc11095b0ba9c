"""Shared test fixtures. Fixture names are prefixed by the family or area they serve."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import BertTokenizer

from audiolang import DsclapConfig, DsclapModel, DsclapProcessor

# A word-level WordPiece vocabulary: enough for in-car commands and the zero-shot prompts used by the tests, with
# no download (the tiny text encoder's 30522-row embedding accepts these ids).
_DSCLAP_WORDS = (
    "navigate home to work play some music open close the window call mom dad turn on off radio volume up down "
    "this is a sound of weather news set reminder message seat heat"
)


@pytest.fixture(scope="session")
def dsclap_tokenizer() -> BertTokenizer:
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *dict.fromkeys(_DSCLAP_WORDS.split())]
    return BertTokenizer(vocab={token: index for index, token in enumerate(vocab)})


@pytest.fixture(scope="session")
def dsclap_config_factory() -> Callable[..., DsclapConfig]:
    """`factory(**overrides)`: the tiny preset without dropout, so that train-mode runs are deterministic."""

    def factory(**overrides: object) -> DsclapConfig:
        audio = {
            "hidden_dropout": 0.0,
            "attention_dropout": 0.0,
            "activation_dropout": 0.0,
            "feat_proj_dropout": 0.0,
        }
        text = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
        audio.update(overrides.pop("audio_config", {}))
        text.update(overrides.pop("text_config", {}))
        overrides.setdefault("classifier_dropout", 0.0)
        return DsclapConfig.from_preset("tiny", audio_config=audio, text_config=text, **overrides)

    return factory


@pytest.fixture(scope="session")
def dsclap_waveforms() -> Callable[..., list[np.ndarray]]:
    """`make(*lengths, seed=0)`: reproducible non-silent float32 waveforms of the given sample counts."""

    def make(*lengths: int, seed: int = 0) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        return [(0.1 * rng.standard_normal(length)).astype(np.float32) for length in lengths]

    return make


@pytest.fixture(scope="session")
def dsclap_checkpoint(
    tmp_path_factory: pytest.TempPathFactory,
    dsclap_tokenizer: BertTokenizer,
    dsclap_config_factory: Callable[..., DsclapConfig],
) -> Path:
    """A saved tiny `DsclapModel` + `DsclapProcessor` folder, as `save_pretrained` writes it."""
    folder = tmp_path_factory.mktemp("dsclap_checkpoint")
    torch.manual_seed(0)
    config = dsclap_config_factory()
    DsclapModel(config).save_pretrained(folder)
    DsclapProcessor.from_config(config, dsclap_tokenizer).save_pretrained(folder)
    return folder
