"""Shared test fixtures. Fixture names are prefixed by the family or area they serve."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch
from model_tester import dsclap_config
from transformers import BertTokenizer

from audiolang import DsclapConfig, DsclapModel, DsclapProcessor

if TYPE_CHECKING:
    from datasets import Dataset

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
    return dsclap_config


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


# Whisper's special tokens, in its order, after the 256 byte-level tokens: at ids unlike the real models' ones, so
# that code reading them from the tokenizer is told apart from code that hard-codes them.
WHISPER_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|startoftranscript|>",
    "<|en|>",
    "<|de|>",
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nocaptions|>",
    "<|notimestamps|>",
]


@pytest.fixture(scope="session")
def whisper_tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved random multilingual-shaped `WhisperForConditionalGeneration` (vocabulary 51865, 2+2 layers of width
    16) with its `WhisperProcessor` (a byte-level tokenizer with Whisper's special tokens) and generation config."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    folder = tmp_path_factory.mktemp("whisper_tiny")
    backend = Tokenizer(
        models.BPE(vocab={char: i for i, char in enumerate(bytes_to_unicode().values())}, merges=[])
    )
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in WHISPER_SPECIAL_TOKENS]
    )
    backend.save(str(folder / "tokenizer.json"))
    tokenizer = WhisperTokenizer(
        tokenizer_file=str(folder / "tokenizer.json"), extra_special_tokens=WHISPER_SPECIAL_TOKENS
    )
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in WHISPER_SPECIAL_TOKENS}
    eos = ids["<|endoftext|>"]
    config = WhisperConfig(
        d_model=16,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_source_positions=1500,
        max_target_positions=64,
        vocab_size=51865,
        pad_token_id=eos,
        bos_token_id=eos,
        eos_token_id=eos,
        decoder_start_token_id=ids["<|startoftranscript|>"],
        suppress_tokens=[3, 5],
        begin_suppress_tokens=[220, eos],
    )
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config).eval()
    # Only letters and the space keep their embedding rows: every other token gets zero logits from the tied output
    # projection, so that decoding picks letters (transcripts are text) and never ends by itself (runs to its budget).
    keep = tokenizer.convert_tokens_to_ids([*"abcdefghijklmnopqrstuvwxyz", "\u0120"])
    with torch.no_grad():
        weight = model.model.decoder.embed_tokens.weight
        weight.copy_(weight * torch.isin(torch.arange(config.vocab_size), torch.tensor(keep))[:, None])
    model.generation_config = GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        eos_token_id=eos,
        pad_token_id=eos,
        max_length=config.max_target_positions,
        suppress_tokens=config.suppress_tokens,
        begin_suppress_tokens=config.begin_suppress_tokens,
        alignment_heads=[[1, 0], [1, 1]],
        lang_to_id={"<|en|>": ids["<|en|>"], "<|de|>": ids["<|de|>"]},
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
        no_timestamps_token_id=ids["<|notimestamps|>"],
        prev_sot_token_id=ids["<|startofprev|>"],
        is_multilingual=True,
    )
    model.save_pretrained(folder)
    WhisperProcessor(feature_extractor=WhisperFeatureExtractor(), tokenizer=tokenizer).save_pretrained(folder)
    return folder


def _wav_bytes(samples: np.ndarray, sampling_rate: int = 16_000) -> bytes:
    import io

    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, samples, sampling_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def audio_text_rows(num_rows: int, seed: int, replace: dict[int, dict] | None = None) -> dict[str, list]:
    """`num_rows` rows of the corpus' schema (audio, asr_text, text, directed, duration): 0.3-0.6 s of seeded noise
    over a tone, and a transcript from the tiny tokenizers' vocabulary; `replace` maps rows to other stored audio
    (`{"bytes", "path"}`)."""
    rng = np.random.default_rng(seed)
    words = _DSCLAP_WORDS.split()
    rows: dict[str, list] = {"audio": [], "asr_text": [], "text": [], "directed": [], "duration": []}
    for _ in range(num_rows):
        length = int(rng.integers(4_800, 9_600))
        tone = np.sin(2 * np.pi * rng.uniform(100, 400) * np.arange(length) / 16_000)
        samples = (0.3 * tone + 0.05 * rng.standard_normal(length)).astype(np.float32)
        text = " ".join(rng.choice(words, size=int(rng.integers(2, 6))))
        rows["audio"].append({"bytes": _wav_bytes(samples), "path": None})
        rows["asr_text"].append(text)
        rows["text"].append(text)
        rows["directed"].append(int(rng.integers(2)))
        rows["duration"].append(length / 16_000)
    for row, audio in (replace or {}).items():
        rows["audio"][row] = audio
    return rows


def audio_text_features():
    """The embedded corpus' features of the columns `audio_text_rows` fills."""
    from datasets import Features

    from audiolang.data import corpus_features

    corpus = corpus_features()
    return Features({name: corpus[name] for name in ("audio", "asr_text", "text", "directed", "duration")})


@pytest.fixture(scope="session")
def audio_text_split() -> Callable[..., Dataset]:
    """`make(num_rows, seed, replace=None)`: a split of the corpus' schema (see `audio_text_rows`)."""
    from datasets import Dataset

    def make(num_rows: int, seed: int, replace: dict[int, dict] | None = None) -> Dataset:
        return Dataset.from_dict(audio_text_rows(num_rows, seed, replace), features=audio_text_features())

    return make


@pytest.fixture(scope="session")
def audio_text_dataset(tmp_path_factory: pytest.TempPathFactory, audio_text_split) -> Path:
    """A `load_from_disk` folder with the corpus' splits and columns, in seconds rather than the minute a synthesised
    corpus takes: pretrain 16, train 16, validation 8, test 8 rows."""
    from datasets import DatasetDict

    sizes = {"pretrain": 16, "train": 16, "validation": 8, "test": 8}
    data = DatasetDict({split: audio_text_split(n, seed) for seed, (split, n) in enumerate(sizes.items())})
    folder = tmp_path_factory.mktemp("audio_text_dataset")
    data.save_to_disk(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_text_encoder(tmp_path_factory: pytest.TempPathFactory, dsclap_tokenizer: BertTokenizer) -> Path:
    """A saved 1-layer BERT and its fast tokenizer: a pretrained text tower for `--text_model_name_or_path`."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny_bert")
    BertTokenizerFast(vocab=dsclap_tokenizer.get_vocab()).save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(dsclap_tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(folder)
    return folder
