"""train_ctal_tokenizer, CtalProcessor and run_scripts/run_train_tokenizer.py."""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict
from transformers import AutoProcessor, AutoTokenizer, RobertaTokenizerFast

from audiolang import CtalConfig, CtalFeatureExtractor, CtalProcessor, train_ctal_tokenizer
from audiolang.training import DataCollatorForAudioText

SR = 16_000
SCRIPT = Path(__file__).resolve().parent.parent / "run_scripts" / "run_train_tokenizer.py"


def ctal_corpus(num_texts: int = 300, seed: int = 0) -> list[str]:
    """In-car commands from a few templates, reproducible for a seed."""
    rng = np.random.default_rng(seed)
    templates = [
        "navigate to {place}",
        "play some {genre} music",
        "turn {direction} the volume",
        "call {person} on the mobile",
        "set the temperature to {number} degrees",
        "what is the weather like in {place}",
    ]
    fillers = {
        "place": ["home", "work", "the airport", "munich", "the nearest charging station"],
        "genre": ["jazz", "rock", "classical", "pop"],
        "direction": ["up", "down"],
        "person": ["mom", "dad", "anna", "the office"],
        "number": ["eighteen", "twenty", "twenty two"],
    }
    texts = []
    for _ in range(num_texts):
        template = templates[rng.integers(len(templates))]
        texts.append(template.format(**{k: v[rng.integers(len(v))] for k, v in fillers.items()}))
    return texts


def ctal_clips(*lengths: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(length)).astype(np.float32) for length in lengths]


@pytest.fixture(scope="module")
def ctal_tokenizer() -> RobertaTokenizerFast:
    return train_ctal_tokenizer(ctal_corpus(), vocab_size=400, min_frequency=2)


@pytest.fixture
def ctal_processor(ctal_tokenizer: RobertaTokenizerFast) -> CtalProcessor:
    return CtalProcessor(CtalFeatureExtractor(max_audio_frames=400), ctal_tokenizer, max_text_length=12)


# --- tokenizer ---


def test_special_tokens_have_robertas_ids(ctal_tokenizer: RobertaTokenizerFast) -> None:
    tokens = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    assert ctal_tokenizer.convert_tokens_to_ids(tokens) == [0, 1, 2, 3, 4]
    assert (ctal_tokenizer.bos_token, ctal_tokenizer.cls_token) == ("<s>", "<s>")
    assert (ctal_tokenizer.eos_token, ctal_tokenizer.sep_token) == ("</s>", "</s>")
    assert (ctal_tokenizer.pad_token_id, ctal_tokenizer.unk_token, ctal_tokenizer.mask_token_id) == (
        1,
        "<unk>",
        4,
    )
    config = CtalConfig()  # the model's defaults must agree with the tokenizer's ids
    assert (config.bos_token_id, config.pad_token_id, config.eos_token_id, config.mask_token_id) == (
        0,
        1,
        2,
        4,
    )


def test_byte_level_bpe_learns_merges_within_the_vocabulary(ctal_tokenizer: RobertaTokenizerFast) -> None:
    assert 256 + 5 < len(ctal_tokenizer) <= 400
    assert ctal_tokenizer.tokenize("navigate to the airport") == ["navigate", "Ġto", "Ġthe", "Ġairport"]


@pytest.mark.parametrize(
    "text", ["navigate to munich", "play some jazz music", "Zürich, bitte! 🚗 42°C", "  two  spaces  "]
)
def test_text_round_trips_with_s_and_end_tokens(ctal_tokenizer: RobertaTokenizerFast, text: str) -> None:
    ids = ctal_tokenizer(text)["input_ids"]
    assert ids[0] == 0 and ids[-1] == 2
    assert ctal_tokenizer.unk_token_id not in ids  # byte-level: every string is covered
    assert ctal_tokenizer.decode(ids, skip_special_tokens=True) == text
    assert ctal_tokenizer.decode(ids) == f"<s>{text}</s>"


def test_mask_token_replaces_a_word_and_its_space(ctal_tokenizer: RobertaTokenizerFast) -> None:
    masked = ctal_tokenizer("turn <mask> the volume")["input_ids"]
    plain = ctal_tokenizer("turn up the volume")["input_ids"]
    assert masked.count(ctal_tokenizer.mask_token_id) == 1
    assert len(masked) == len(plain)  # "Ġup" became <mask>: no stray "Ġ" token
    assert masked == [plain[i] if i != 2 else 4 for i in range(len(plain))]


def test_saved_folder_loads_with_auto_tokenizer(ctal_tokenizer: RobertaTokenizerFast, tmp_path: Path) -> None:
    ctal_tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert isinstance(loaded, RobertaTokenizerFast)
    assert loaded.get_vocab() == ctal_tokenizer.get_vocab()
    text = ["call <mask> on the mobile", "set the temperature to twenty degrees"]
    assert loaded(text)["input_ids"] == ctal_tokenizer(text)["input_ids"]
    assert loaded.model_max_length == 512


def test_training_is_deterministic_and_accepts_a_dataset(
    ctal_tokenizer: RobertaTokenizerFast, tmp_path: Path
) -> None:
    texts = ctal_corpus()
    again = train_ctal_tokenizer(iter(texts), vocab_size=400, min_frequency=2, output_dir=tmp_path)
    assert again.backend_tokenizer.to_str() == ctal_tokenizer.backend_tokenizer.to_str()
    dataset = Dataset.from_dict({"transcript": texts + [""], "label": list(range(len(texts) + 1))})
    from_dataset = train_ctal_tokenizer(dataset, vocab_size=400, min_frequency=2, text_column="transcript")
    assert from_dataset.backend_tokenizer.to_str() == ctal_tokenizer.backend_tokenizer.to_str()
    assert AutoTokenizer.from_pretrained(tmp_path).get_vocab() == ctal_tokenizer.get_vocab()


@pytest.mark.parametrize(
    "make_input, kwargs, message",
    [
        (lambda: [], {}, "No text to train the tokenizer on"),
        (lambda: ["", "   "], {}, "every transcript is empty"),
        (lambda: "navigate home", {}, "single string"),
        (lambda: ["navigate home", 3], {}, "item 1 of the texts is a int"),
        (
            lambda: Dataset.from_dict({"text": ["a b"]}),
            {"text_column": "asr_text"},
            "'asr_text' is not a column",
        ),
        (
            lambda: DatasetDict({"pretrain": Dataset.from_dict({"text": ["a"]})}),
            {},
            r"DatasetDict .* \['pretrain'\]",
        ),
        (lambda: ["navigate home"], {"vocab_size": 100}, "`vocab_size` must be at least 261"),
    ],
)
def test_bad_tokenizer_input_is_a_clear_error(make_input, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        train_ctal_tokenizer(make_input(), **kwargs)


# --- processor ---


def test_paired_batch_has_every_model_input(ctal_processor: CtalProcessor) -> None:
    inputs = ctal_processor(
        audio=ctal_clips(16_000, 9_000),
        text=["navigate home", "call mom"],
        sampling_rate=SR,
        return_tensors="pt",
    )
    assert set(inputs) == {"input_features", "audio_attention_mask", "input_ids", "attention_mask"}
    assert inputs["input_features"].shape == (2, 81, 160) and inputs["input_features"].dtype == torch.float32
    assert inputs["audio_attention_mask"].sum(dim=1).tolist() == [81, 46]
    assert inputs["input_ids"][:, 0].tolist() == [0, 0]
    assert inputs["input_ids"].shape[0] == 2 and inputs["attention_mask"].shape == inputs["input_ids"].shape
    # the audio half is exactly the feature extractor's output
    alone = ctal_processor.feature_extractor(ctal_clips(16_000, 9_000), sampling_rate=SR, return_tensors="pt")
    torch.testing.assert_close(inputs["input_features"], alone["input_features"])


def test_either_modality_alone(ctal_processor: CtalProcessor) -> None:
    assert set(ctal_processor(text="navigate home", return_tensors="pt")) == {"input_ids", "attention_mask"}
    audio_only = ctal_processor(audio=ctal_clips(4_000)[0], sampling_rate=SR, return_tensors="pt")
    assert set(audio_only) == {"input_features", "audio_attention_mask"}
    with pytest.raises(ValueError, match="Pass `audio`, `text` or both"):
        ctal_processor()


def test_text_is_truncated_to_max_text_length(ctal_processor: CtalProcessor) -> None:
    long_text = " ".join(["play some jazz music"] * 10)
    inputs = ctal_processor(text=[long_text, "call mom"], return_tensors="pt")
    assert inputs["input_ids"].shape == (2, 12)
    assert inputs["input_ids"][0, -1].item() == ctal_processor.tokenizer.eos_token_id
    assert ctal_processor(text=long_text, max_text_length=6, return_tensors="pt")["input_ids"].shape == (1, 6)
    static = ctal_processor(
        audio=ctal_clips(4_000), text="call mom", sampling_rate=SR, padding="max_length", return_tensors="pt"
    )
    assert static["input_ids"].shape == (1, 12) and static["input_features"].shape == (1, 400, 160)


def test_from_config_takes_the_models_limits(ctal_tokenizer: RobertaTokenizerFast) -> None:
    processor = CtalProcessor.from_config(
        CtalConfig(max_audio_frames=300, max_position_embeddings=64), ctal_tokenizer
    )
    assert processor.feature_extractor.max_audio_frames == 300
    assert processor.max_text_length == 64
    assert CtalProcessor.from_config(CtalConfig(), ctal_tokenizer).max_text_length == 128


@pytest.mark.parametrize(
    "audio, text, sampling_rate, message",
    [
        (ctal_clips(4_000, 5_000), ["navigate home"], SR, r"`audio` has 2 clips but `text` has 1"),
        (ctal_clips(4_000), ["navigate home"], None, r"`sampling_rate` is required"),
        (ctal_clips(4_000), ["navigate home"], 44_100, r"`sampling_rate` is 44100 Hz .* resample"),
        (ctal_clips(4_000, 5_000), ["navigate home", "  "], SR, r"`text\[1\]` is empty"),
        (
            ctal_clips(4_000, 100_000),
            ["a", "b"],
            SR,
            r"`audio\[1\]` has 100000 samples .* `truncate_audio=True`",
        ),
    ],
)
def test_bad_input_raises_a_value_error_naming_the_field(
    ctal_processor: CtalProcessor, audio, text, sampling_rate, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ctal_processor(audio=audio, text=text, sampling_rate=sampling_rate)


def test_truncate_audio_keeps_the_frame_limit(ctal_processor: CtalProcessor) -> None:
    inputs = ctal_processor(
        audio=ctal_clips(100_000), sampling_rate=SR, truncate_audio=True, return_tensors="pt"
    )
    assert inputs["input_features"].shape == (1, 400, 160)


def test_audio_text_collator_drives_the_processor(ctal_processor: CtalProcessor) -> None:
    rows = [
        {"audio": {"array": clip, "sampling_rate": SR}, "text": text}
        for clip, text in zip(ctal_clips(8_000, 5_000), ["navigate home", ""], strict=True)
    ]
    batch = DataCollatorForAudioText(ctal_processor, text_column="text")(rows)
    assert batch["input_features"].shape == (2, 41, 160)
    assert batch["input_ids"][1, :3].tolist() == [0, ctal_processor.tokenizer.unk_token_id, 2]


def test_processor_folder_round_trips(ctal_processor: CtalProcessor, tmp_path: Path) -> None:
    ctal_processor.save_pretrained(tmp_path)
    for module in ("processing_ctal.py", "feature_extraction_ctal.py", "audio_utils.py"):
        assert (tmp_path / module).exists(), module
    args = {
        "audio": ctal_clips(6_000),
        "text": ["play some jazz music"],
        "sampling_rate": SR,
        "return_tensors": "np",
    }
    expected = ctal_processor(**args)
    for processor in (CtalProcessor.from_pretrained(tmp_path), AutoProcessor.from_pretrained(tmp_path)):
        assert type(processor) is CtalProcessor
        assert type(processor.feature_extractor) is CtalFeatureExtractor
        assert processor.max_text_length == 12 and processor.feature_extractor.max_audio_frames == 400
        assert processor.tokenizer.get_vocab() == ctal_processor.tokenizer.get_vocab()
        for key, value in expected.items():
            np.testing.assert_array_equal(processor(**args)[key], value)


TRUST_REMOTE_CODE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from transformers import AutoProcessor
    processor = AutoProcessor.from_pretrained(sys.argv[1], trust_remote_code=True)
    clip = (0.1 * np.random.default_rng(0).standard_normal(6_000)).astype(np.float32)
    inputs = processor(audio=[clip], text=["play some jazz music"], sampling_rate=16000, return_tensors="np")
    print(json.dumps({
        "classes": [type(processor).__module__, type(processor.feature_extractor).__module__],
        "features": float(inputs["input_features"].sum()),
        "input_ids": inputs["input_ids"].tolist(),
    }))
    """
)


def test_processor_loads_with_trust_remote_code_without_audiolang(
    ctal_processor: CtalProcessor, tmp_path: Path, run_without_audiolang
) -> None:
    folder = tmp_path / "processor"
    ctal_processor.save_pretrained(folder)
    report = run_without_audiolang(TRUST_REMOTE_CODE_SCRIPT, folder, workdir=tmp_path)
    assert all(module.startswith("transformers_modules.") for module in report["classes"]), report["classes"]
    clip = (0.1 * np.random.default_rng(0).standard_normal(6_000)).astype(np.float32)
    expected = ctal_processor(
        audio=[clip], text=["play some jazz music"], sampling_rate=SR, return_tensors="np"
    )
    assert report["features"] == pytest.approx(float(expected["input_features"].sum()), abs=1e-3)
    assert report["input_ids"] == expected["input_ids"].tolist()


# --- run script ---


def load_run_script(monkeypatch: pytest.MonkeyPatch):
    """The script as a module (in-process: no second interpreter start-up)."""
    spec = importlib.util.spec_from_file_location("run_train_tokenizer", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_run_script_trains_on_a_split_column(
    ctal_tokenizer: RobertaTokenizerFast,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    texts = ctal_corpus()
    DatasetDict(
        {
            "pretrain": Dataset.from_dict({"text": texts, "asr_text": [t.upper() for t in texts]}),
            "validation": Dataset.from_dict({"text": ["held out"], "asr_text": ["HELD OUT"]}),
        }
    ).save_to_disk(tmp_path / "data")
    script = load_run_script(monkeypatch)
    out = tmp_path / "tokenizer"
    common = ["--dataset_path", str(tmp_path / "data"), "--vocab_size", "400", "--output_dir", str(out)]
    script.main(common)
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary == {
        "output_dir": str(out),
        "vocab_size": len(ctal_tokenizer),
        "rows": len(texts),
        "split": "pretrain",
        "text_column": "text",
    }
    assert AutoTokenizer.from_pretrained(out).get_vocab() == ctal_tokenizer.get_vocab()
    with pytest.raises(ValueError, match="is not empty .* --overwrite_output_dir"):
        script.main([*common, "--text_column", "asr_text"])
    script.main([*common, "--text_column", "asr_text", "--overwrite_output_dir", "true"])
    assert "NAVIGATE" in AutoTokenizer.from_pretrained(out).get_vocab()
    with pytest.raises(ValueError, match=r"`--split` 'train' is not in the dataset; its splits are"):
        script.main([*common, "--split", "train"])
