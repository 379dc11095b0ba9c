"""Shared test fixtures. Fixture names are prefixed by the family or area they serve."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
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


# Prepended to every script `run_without_audiolang` runs: the package may be installed in this environment, so it is
# made unimportable (and checked to be) before the script imports anything.
WITHOUT_AUDIOLANG = textwrap.dedent(
    """
    import sys
    sys.modules["audiolang"] = None
    try:
        import audiolang
        raise SystemExit("audiolang is importable")
    except ImportError:
        pass
    """
)

TRUST_REMOTE_CODE_SCRIPT = textwrap.dedent(
    """
    import importlib.util, json, sys
    import torch
    from transformers import AutoConfig, AutoModel, AutoProcessor
    folder = sys.argv[1]
    config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    inputs = processor(audio=[torch.linspace(-1, 1, 6000).sin().numpy()], text=["navigate home"], sampling_rate=16000,
                       return_tensors="pt")
    with torch.no_grad():
        out = model(**inputs)
    print(json.dumps({
        "classes": [type(config).__module__, type(model).__module__, type(processor).__module__,
                    type(processor.feature_extractor).__module__],
        "loaded": sorted(name for name in sys.modules if name.startswith("audiolang")),
        "logit": out.logits_per_audio.item(),
    }))
    """
)


@pytest.fixture(scope="session")
def run_without_audiolang() -> Callable[..., dict]:
    """`run(script, *args, workdir=...)`: run a Python `script` in a subprocess where `audiolang` cannot be imported
    (for `trust_remote_code=True` loading of saved folders), offline, and return the JSON its last line prints."""

    def run(script: str, *args: str | Path, workdir: Path) -> dict:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(HF_HOME=str(workdir / "hf_home"), HF_HUB_OFFLINE="1")
        result = subprocess.run(
            [sys.executable, "-c", WITHOUT_AUDIOLANG + script, *map(str, args)],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    return run


@pytest.fixture(scope="session")
def load_without_audiolang(run_without_audiolang) -> Callable[[Path, Path], dict]:
    """`load(folder, workdir)`: load a saved audio-text checkpoint with `trust_remote_code=True` where `audiolang`
    cannot be imported, score one clip against one text, and report the classes' modules and the logit."""

    def load(folder: Path, workdir: Path) -> dict:
        return run_without_audiolang(TRUST_REMOTE_CODE_SCRIPT, folder, workdir=workdir)

    return load


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread() -> None:
    """Tests run on tiny tensors, two pytest workers on two cores: torch's intra-op threads would only contend
    (up to 10x slower). Subprocesses (the run-script tests) inherit the limit through the environment."""
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
