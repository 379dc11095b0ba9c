"""The `audio-text-classification` pipeline: the model's own forward on the processor's output, for every family;
batching, top-k, regression, the input forms; the recogniser called once per clip, batched, from the folder's
record (a real pocketsphinx with the copied language model); the inference recogniser a folder may record beside its
training one, and `asr=` per call; loading with `trust_remote_code` where audiolang is not importable; and
transformers' zero-shot pipeline on a Turbo folder."""

from __future__ import annotations

import io
import json
import shutil
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import AutoModel, AutoModelForSequenceClassification, AutoProcessor, pipeline

from audiolang import (
    CtalConfig,
    CtalForSequenceClassification,
    CtalProcessor,
    DsclapForSequenceClassification,
    DsclapProcessor,
    LratConfig,
    LratForSequenceClassification,
    LratProcessor,
    TurboConfig,
    TurboForSequenceClassification,
    TurboProcessor,
    train_ctal_tokenizer,
)
from audiolang.data.asr import ASRBackend, validate_audio_batch
from audiolang.pipelines import (
    ASR_CONFIG_NAME,
    ASR_FOLDER,
    INFERENCE_ASR_FOLDER,
    AudioTextClassificationPipeline,
    load_audio_file,
    load_saved_asr,
    save_asr_config,
    save_custom_pipeline,
    save_inference_asr,
    saved_asr_config,
    saved_inference_asr_config,
)

TASK = "audio-text-classification"
LABELS = ("navigation", "music", "windows")
FAMILIES = ("dsclap", "turbo", "ctal", "lrat")
TEXTS = ["navigate home", "play some music", "open the window", "call mom", "turn on the radio"]


class CountingASR(ASRBackend):
    """A recogniser that records the clips of each call (by length) and 'hears' a text chosen by the clip's length."""

    name = "counting"

    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    def transcribe(self, audio: Sequence[np.ndarray], sampling_rate: int) -> list[str]:
        batch = validate_audio_batch(audio, sampling_rate, self.sampling_rate)
        self.calls.append([len(clip) for clip in batch])
        return [TEXTS[len(clip) % len(TEXTS)] for clip in batch]


def _labels(num_labels: int = len(LABELS)) -> dict:
    names = LABELS[:num_labels]
    return {
        "num_labels": num_labels,
        "id2label": dict(enumerate(names)),
        "label2id": {name: i for i, name in enumerate(names)},
    }


@pytest.fixture(scope="module")
def folders(tmp_path_factory, dsclap_tokenizer, dsclap_config_factory) -> dict[str, Path]:
    """A saved classifier with random weights (and its processor) per family, exported for the pipeline; and a
    DSCLAP regression model ("valence")."""
    root = tmp_path_factory.mktemp("pipeline_folders")
    torch.manual_seed(0)
    dsclap = dsclap_config_factory(**_labels())
    models = {
        "dsclap": (
            DsclapForSequenceClassification(dsclap),
            DsclapProcessor.from_config(dsclap, dsclap_tokenizer),
        ),
        "regression": (
            DsclapForSequenceClassification(
                dsclap_config_factory(num_labels=1, problem_type="regression", id2label={0: "valence"})
            ),
            DsclapProcessor.from_config(dsclap, dsclap_tokenizer),
        ),
    }
    turbo = TurboConfig(audio_config=dsclap.audio_config, text_config=dsclap.text_config, **_labels())
    models["turbo"] = (
        TurboForSequenceClassification(turbo),
        TurboProcessor.from_config(turbo, dsclap_tokenizer),
    )
    tokenizer = train_ctal_tokenizer(TEXTS * 4, vocab_size=300, min_frequency=1)
    special = {
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "mask_token_id": tokenizer.mask_token_id,
    }
    for family, config_class, model_class, processor_class in (
        ("ctal", CtalConfig, CtalForSequenceClassification, CtalProcessor),
        ("lrat", LratConfig, LratForSequenceClassification, LratProcessor),
    ):
        config = config_class.from_preset("tiny", **special, **_labels())
        models[family] = (model_class(config), processor_class.from_config(config, tokenizer))
    for name, (model, processor) in models.items():
        model.eval().save_pretrained(root / name)
        processor.save_pretrained(root / name)
        save_custom_pipeline(root / name)
    return {name: root / name for name in models}


@pytest.fixture(scope="module")
def clips(dsclap_waveforms) -> list[np.ndarray]:
    # Distinct lengths: CountingASR tells the clips apart by them.
    return dsclap_waveforms(6_000, 7_001, 8_002, 9_003, 10_004, seed=1)


def _classifier(folder: Path, **kwargs) -> AudioTextClassificationPipeline:
    # A folder that carries `custom_pipelines` would need `trust_remote_code`: this package's class is named instead.
    return pipeline(
        TASK, model=str(folder), pipeline_class=AudioTextClassificationPipeline, device="cpu", **kwargs
    )


def _expected(folder: Path, clip: np.ndarray, transcript: str) -> dict[str, float]:
    """Every label's probability: the model's own forward on its processor's output for the clip alone."""
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    processor = AutoProcessor.from_pretrained(folder)
    inputs = processor(audio=[clip], text=[transcript], sampling_rate=16_000, return_tensors="pt")
    with torch.no_grad():
        probs = model(**inputs).logits[0].softmax(-1)
    return {model.config.id2label[i]: float(p) for i, p in enumerate(probs)}


@pytest.mark.parametrize("family", FAMILIES)
def test_pipeline_is_the_models_forward_on_the_processors_output(folders, clips, family):
    classifier = _classifier(folders[family])
    texts = TEXTS[: len(clips)]
    one_by_one = classifier(clips, sampling_rate=16_000, transcript=texts, top_k=None)
    for clip, text, result in zip(clips, texts, one_by_one, strict=True):
        assert [item["transcript"] for item in result] == [text] * len(LABELS)
        scores = [item["score"] for item in result]
        assert scores == sorted(scores, reverse=True)
        assert {item["label"]: item["score"] for item in result} == pytest.approx(
            _expected(folders[family], clip, text), abs=1e-5
        )
    # A batch pads clips and transcripts together; each clip's result is the one it gets alone.
    batched = classifier(clips, sampling_rate=16_000, transcript=texts, top_k=None, batch_size=3)
    for alone, in_batch in zip(one_by_one, batched, strict=True):
        assert [item["label"] for item in in_batch] == [item["label"] for item in alone]
        assert [item["score"] for item in in_batch] == pytest.approx(
            [item["score"] for item in alone], abs=1e-5
        )


def test_the_recogniser_hears_each_clip_once_per_batch(folders, clips):
    asr = CountingASR()
    classifier = _classifier(folders["dsclap"], asr=asr)
    results = classifier(clips, sampling_rate=16_000, batch_size=2)
    lengths = [len(clip) for clip in clips]
    assert asr.calls == [lengths[0:2], lengths[2:4], lengths[4:5]]
    heard = [TEXTS[n % len(TEXTS)] for n in lengths]
    assert [result["transcript"] for result in results] == heard
    # The same as being given those transcripts.
    given = _classifier(folders["dsclap"])(clips, sampling_rate=16_000, transcript=heard, batch_size=2)
    assert results == given
    # Clips that come with a transcript are not transcribed.
    asr.calls.clear()
    mixed = [
        {"audio": {"raw": clip, "sampling_rate": 16_000}, "transcript": "call mom"} for clip in clips[:2]
    ]
    mixed += [{"raw": clip, "sampling_rate": 16_000} for clip in clips[2:]]
    results = classifier(mixed, batch_size=5)
    assert asr.calls == [lengths[2:]]
    assert [result["transcript"] for result in results] == ["call mom", "call mom", *heard[2:]]


def test_top_k_and_function_to_apply(folders, clips):
    classifier = _classifier(folders["dsclap"])
    every = classifier(clips[0], sampling_rate=16_000, transcript="navigate home", top_k=None)
    best = classifier(clips[0], sampling_rate=16_000, transcript="navigate home")
    assert best == every[0] and set(best) == {"label", "score", "transcript"}
    assert classifier(clips[0], sampling_rate=16_000, transcript="navigate home", top_k=2) == every[:2]
    model = AutoModelForSequenceClassification.from_pretrained(folders["dsclap"]).eval()
    inputs = AutoProcessor.from_pretrained(folders["dsclap"])(
        audio=[clips[0]], text=["navigate home"], sampling_rate=16_000, return_tensors="pt"
    )
    with torch.no_grad():
        logits = model(**inputs).logits[0]
    raw = classifier(
        clips[0], sampling_rate=16_000, transcript="navigate home", top_k=None, function_to_apply="none"
    )
    assert {item["label"]: item["score"] for item in raw} == pytest.approx(
        {LABELS[i]: float(v) for i, v in enumerate(logits)}, abs=1e-5
    )
    sigmoid = classifier(
        clips[0], sampling_rate=16_000, transcript="navigate home", function_to_apply="sigmoid"
    )
    assert sigmoid["score"] == pytest.approx(float(logits.sigmoid().max()), abs=1e-6)


def test_regression_returns_the_predicted_value(folders, clips):
    result = _classifier(folders["regression"])(clips[1], sampling_rate=16_000, transcript="play some music")
    model = AutoModelForSequenceClassification.from_pretrained(folders["regression"]).eval()
    inputs = AutoProcessor.from_pretrained(folders["regression"])(
        audio=[clips[1]], text=["play some music"], sampling_rate=16_000, return_tensors="pt"
    )
    with torch.no_grad():
        value = model(**inputs).logits[0, 0].item()
    assert result == {
        "label": "valence",
        "score": pytest.approx(value, abs=1e-6),
        "transcript": "play some music",
    }


def test_input_forms_file_dict_and_datasets_row(folders, clips, tmp_path):
    """Audio files and dicts at another rate are resampled to the model's (soxr, as `librosa.load` does); a
    `datasets` Audio value is read as datasets decodes it."""
    import librosa
    from datasets import Audio, Dataset

    classifier = _classifier(folders["dsclap"])
    clip_8k = clips[2][::2].copy()
    sf.write(tmp_path / "clip.wav", clip_8k, 8_000, subtype="FLOAT")
    resampled = librosa.resample(clip_8k, orig_sr=8_000, target_sr=16_000, res_type="soxr_hq")
    expected = classifier(resampled, sampling_rate=16_000, transcript="open the window", top_k=None)
    from_dict = classifier({"raw": clip_8k, "sampling_rate": 8_000}, transcript="open the window", top_k=None)
    assert from_dict == expected
    assert classifier(str(tmp_path / "clip.wav"), transcript="open the window", top_k=None) == expected

    buffer = io.BytesIO()
    sf.write(buffer, clips[3], 16_000, format="WAV", subtype="PCM_16")
    rows = Dataset.from_dict({"audio": [{"bytes": buffer.getvalue(), "path": None}]}).cast_column(
        "audio", Audio()
    )
    decoded = rows[0]["audio"]
    samples = decoded.get_all_samples().data.numpy()[0]
    assert classifier(decoded, transcript="call mom") == classifier(
        samples, sampling_rate=16_000, transcript="call mom"
    )


def test_audio_files_are_read_as_librosa_reads_them_and_browser_containers_through_ffmpeg(tmp_path):
    """`load_audio_file`, the reader of the pipeline and the app: soundfile + soxr for what libsndfile decodes (the
    same samples as `librosa.load`), torchcodec for containers it cannot (here lossless ALAC in an .m4a, so the
    decoded samples must equal the written ones)."""
    import subprocess

    import librosa

    rng = np.random.default_rng(0)
    clip = (
        0.3 * np.sin(2 * np.pi * 330 * np.arange(11_025) / 22_050) + 0.01 * rng.standard_normal(11_025)
    ).astype(np.float32)
    sf.write(tmp_path / "clip.wav", clip, 22_050, subtype="PCM_16")
    expected, _ = librosa.load(tmp_path / "clip.wav", sr=16_000)
    np.testing.assert_array_equal(load_audio_file(tmp_path / "clip.wav", 16_000), expected)

    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is missing: `make setup` installs it (apt-get install ffmpeg)")
    sf.write(tmp_path / "clip16.wav", clip[:8_000], 16_000, subtype="PCM_16")
    written, _ = sf.read(tmp_path / "clip16.wav", dtype="float32")
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-i",
            tmp_path / "clip16.wav",
            "-c:a",
            "alac",
            tmp_path / "clip.m4a",
        ],
        check=True,
    )
    decoded = load_audio_file(str(tmp_path / "clip.m4a"), 16_000)
    np.testing.assert_allclose(decoded, written, atol=1e-6)


def test_clear_errors(folders, clips):
    classifier = _classifier(folders["dsclap"])
    with pytest.raises(ValueError, match="`sampling_rate` is required"):
        classifier(clips[0], transcript="call mom")
    with pytest.raises(ValueError, match="2 clips but `transcript` has 1"):
        classifier(clips[:2], sampling_rate=16_000, transcript=["call mom"])
    with pytest.raises(ValueError, match="records no speech recogniser.*transcript="):
        classifier(clips[0], sampling_rate=16_000)
    with pytest.raises(ValueError, match="silent"):  # the feature extractor's validator
        classifier(np.zeros(8_000, dtype=np.float32), sampling_rate=16_000, transcript="call mom")
    with pytest.raises(ValueError, match="does not exist"):
        classifier("no/such/clip.wav", transcript="call mom")
    with pytest.raises(ValueError, match="`top_k`"):
        classifier(clips[0], sampling_rate=16_000, transcript="call mom", top_k=0)


def test_the_folders_pocketsphinx_recogniser(folders, tmp_path):
    """A folder that records pocketsphinx with a domain language model (copied into it) transcribes clips with it:
    the transcripts are those of the same recogniser built from the original files."""
    from audiolang.data.asr import PocketSphinxASR, build_pocketsphinx_lm
    from audiolang.data.synthesis import Voice, check_engines, synthesize

    try:
        check_engines({"espeak-ng"})
    except RuntimeError as error:
        pytest.skip(str(error))
    lm_path, dict_path = build_pocketsphinx_lm(TEXTS, tmp_path / "lm")
    folder = tmp_path / "with_asr"
    shutil.copytree(folders["dsclap"], folder)
    save_asr_config(folder, "pocketsphinx", lm_path=str(lm_path), dict_path=str(dict_path))
    record = json.loads((folder / ASR_FOLDER / ASR_CONFIG_NAME).read_text())
    assert record == {
        "spec": "pocketsphinx",
        "kwargs": {"lm_path": "domain.arpa", "dict_path": "domain.dict"},
    }
    assert (folder / ASR_FOLDER / "domain.arpa").read_bytes() == lm_path.read_bytes()

    voice = Voice("espeak-en-us+m1", "espeak-ng", "en-us+m1", "m")
    speech = [synthesize(voice, text) for text in ("navigate home", "open the window")]
    classifier = _classifier(folder)
    results = classifier(speech, sampling_rate=16_000, batch_size=2)
    expected = PocketSphinxASR(lm_path=lm_path, dict_path=dict_path).transcribe(speech, 16_000)
    assert [result["transcript"] for result in results] == expected
    assert all(expected)  # it heard words

    # The pipeline saves itself whole: model, processor, its code and its recogniser.
    classifier.save_pretrained(tmp_path / "saved")
    assert (tmp_path / "saved" / ASR_FOLDER / "domain.dict").read_bytes() == dict_path.read_bytes()
    assert TASK in json.loads((tmp_path / "saved" / "config.json").read_text())["custom_pipelines"]
    assert _classifier(tmp_path / "saved")(speech, sampling_rate=16_000, batch_size=2) == results


class SpecASR(ASRBackend):
    """What the fake `load_asr` builds: it 'hears' the text of the file its `lm_path` names (so that a test sees which
    record, with which of its files, was built), else a text chosen by its spec."""

    def __init__(self, spec: str, **kwargs) -> None:
        self.name, self.kwargs = spec, kwargs

    def transcribe(self, audio: Sequence[np.ndarray], sampling_rate: int) -> list[str]:
        batch = validate_audio_batch(audio, sampling_rate, self.sampling_rate)
        lm_path = self.kwargs.get("lm_path")
        text = Path(lm_path).read_text() if lm_path else TEXTS[sum(map(ord, self.name)) % len(TEXTS)]
        return [text] * len(batch)


@pytest.fixture
def fake_load_asr(monkeypatch) -> list[tuple[str, dict]]:
    """`audiolang.load_asr` replaced by `SpecASR`; returns the `(spec, kwargs)` of every recogniser it built."""
    import audiolang.data.asr

    builds: list[tuple[str, dict]] = []

    def load_asr(spec: str, **kwargs) -> SpecASR:
        builds.append((spec, kwargs))
        return SpecASR(spec, **kwargs)

    monkeypatch.setattr(audiolang.data.asr, "load_asr", load_asr)
    return builds


def _transcripts(results: list) -> list[str]:
    return [result["transcript"] for result in results]


def test_asr_per_call_is_for_that_call_only_and_built_once(folders, clips, fake_load_asr):
    """`asr=` per call (issue 20, case 16: it was refused by an error that listed it as accepted): a spec is built on
    the first call that needs it and kept; the next call without it is back to the pipeline's recogniser."""
    heard = {spec: [SpecASR(spec).transcribe([clip], 16_000)[0] for clip in clips] for spec in ("a", "b")}
    assert heard["a"] != heard["b"]
    classifier = _classifier(folders["dsclap"])  # the folder records no recogniser
    assert _transcripts(classifier(clips, sampling_rate=16_000, asr="b", batch_size=2)) == heard["b"]
    assert _transcripts(classifier(clips, sampling_rate=16_000, asr="b")) == heard["b"]
    assert fake_load_asr == [("b", {})]  # built once, for both calls
    with pytest.raises(ValueError, match="records no speech recogniser"):
        classifier(clips[0], sampling_rate=16_000)
    # The result is the one of being given those transcripts.
    given = classifier(clips, sampling_rate=16_000, transcript=heard["b"], top_k=None)
    assert classifier(clips, sampling_rate=16_000, asr="b", top_k=None) == given

    with_default = _classifier(folders["dsclap"], asr="a")
    assert _transcripts(with_default(clips, sampling_rate=16_000, asr="b")) == heard["b"]
    assert _transcripts(with_default(clips, sampling_rate=16_000)) == heard["a"]
    assert _transcripts(with_default(clips, sampling_rate=16_000, asr=("b", {}))) == heard["b"]
    assert fake_load_asr == [("b", {}), ("b", {}), ("a", {})]  # one build per pipeline and spec
    # A ready back-end per call; clips given with a transcript build nothing.
    counting = CountingASR()
    results = with_default(clips[:2], sampling_rate=16_000, asr=counting, batch_size=2)
    assert counting.calls == [[len(clip) for clip in clips[:2]]]
    assert _transcripts(results) == [TEXTS[len(clip) % len(TEXTS)] for clip in clips[:2]]
    with_default(clips[0], sampling_rate=16_000, transcript="call mom", asr="c")
    assert len(fake_load_asr) == 3
    with pytest.raises(ValueError, match="`asr` must be"):
        with_default(clips[0], sampling_rate=16_000, asr=3)
    with pytest.raises(ValueError, match="unknown argument.*'asr_spec'"):
        with_default(clips[0], sampling_rate=16_000, asr_spec="b")
    # The folder's own copy of the pipeline, as `trust_remote_code=True` loads it (the form of the issue).
    remote = pipeline(TASK, model=str(folders["dsclap"]), trust_remote_code=True, device="cpu")
    assert type(remote).__module__.startswith("transformers_modules.")
    assert _transcripts([remote(clips[0], sampling_rate=16_000, asr="b")]) == heard["b"][:1]


@pytest.fixture
def two_recogniser_files(tmp_path) -> dict[str, Path]:
    """Two different files of one name, as two pocketsphinx language models would be: what SpecASR hears."""
    files = {}
    for record, text in (("training", "call mom"), ("inference", "turn on the radio")):
        (tmp_path / record).mkdir()
        files[record] = tmp_path / record / "domain.arpa"
        files[record].write_text(text)
    return files


def test_the_inference_recogniser_comes_before_the_training_one(
    folders, clips, fake_load_asr, two_recogniser_files, tmp_path
):
    files = two_recogniser_files
    training_only = tmp_path / "training_only"
    shutil.copytree(folders["dsclap"], training_only)
    save_asr_config(training_only, "a", lm_path=str(files["training"]))
    assert _transcripts(_classifier(training_only)(clips[:2], sampling_rate=16_000)) == ["call mom"] * 2

    both = tmp_path / "both"
    shutil.copytree(training_only, both)
    written = save_inference_asr(both, "b", lm_path=str(files["inference"]))
    assert written == both / INFERENCE_ASR_FOLDER / ASR_CONFIG_NAME
    assert json.loads(written.read_text()) == {"spec": "b", "kwargs": {"lm_path": "domain.arpa"}}
    # The training record and its file of the same name are untouched.
    assert json.loads((both / ASR_FOLDER / ASR_CONFIG_NAME).read_text()) == {
        "spec": "a",
        "kwargs": {"lm_path": "domain.arpa"},
    }
    assert (both / ASR_FOLDER / "domain.arpa").read_text() == "call mom"
    assert saved_asr_config(both) == ("a", {"lm_path": str(both / ASR_FOLDER / "domain.arpa")})
    assert saved_inference_asr_config(both) == (
        "b",
        {"lm_path": str(both / INFERENCE_ASR_FOLDER / "domain.arpa")},
    )
    assert saved_inference_asr_config(training_only) is None
    assert load_saved_asr(both).name == "b" and load_saved_asr(training_only).name == "a"

    fake_load_asr.clear()
    classifier = _classifier(both)
    assert _transcripts(classifier(clips[:2], sampling_rate=16_000)) == ["turn on the radio"] * 2
    # `asr=` overrides both records, per call and for the pipeline.
    heard_c = SpecASR("c").transcribe(clips[:1], 16_000)
    assert _transcripts([classifier(clips[0], sampling_rate=16_000, asr="c")]) == heard_c
    assert _transcripts([_classifier(both, asr="c")(clips[0], sampling_rate=16_000)]) == heard_c
    # The training recogniser is never built where the inference one runs.
    assert [spec for spec, _ in fake_load_asr] == ["b", "c", "c"]


def test_saving_the_pipeline_keeps_both_records(
    folders, clips, fake_load_asr, two_recogniser_files, tmp_path
):
    files = two_recogniser_files
    both = tmp_path / "both"
    shutil.copytree(folders["dsclap"], both)
    save_asr_config(both, "a", lm_path=str(files["training"]))
    save_inference_asr(both, "b", lm_path=str(files["inference"]))

    _classifier(both).save_pretrained(tmp_path / "saved")
    saved = tmp_path / "saved"
    for folder in (ASR_FOLDER, INFERENCE_ASR_FOLDER):
        assert (saved / folder / ASR_CONFIG_NAME).read_text() == (both / folder / ASR_CONFIG_NAME).read_text()
        assert (saved / folder / "domain.arpa").read_text() == (both / folder / "domain.arpa").read_text()
    assert _transcripts([_classifier(saved)(clips[0], sampling_rate=16_000)]) == ["turn on the radio"]

    # The pipeline's own `asr=` is saved as the inference recogniser; the training one stays what it was.
    _classifier(both, asr="c").save_pretrained(tmp_path / "saved_c")
    assert saved_asr_config(tmp_path / "saved_c")[0] == "a"
    assert saved_inference_asr_config(tmp_path / "saved_c") == ("c", {})
    # A folder with only the training record is saved without an inference one; re-saving onto itself works.
    training_only = tmp_path / "training_only"
    shutil.copytree(folders["dsclap"], training_only)
    save_asr_config(training_only, "a", lm_path=str(files["training"]))
    _classifier(training_only).save_pretrained(training_only)
    assert not (training_only / INFERENCE_ASR_FOLDER).exists()
    assert (training_only / ASR_FOLDER / "domain.arpa").read_text() == "call mom"


def test_real_recognisers_from_both_records(folders, whisper_tiny_checkpoint, tmp_path):
    """Through the real `load_asr`: a folder that trained on pocketsphinx (with its domain language model) and names
    a Whisper for inference runs the Whisper; per call, pocketsphinx with the recorded model again."""
    from audiolang.data.asr import PocketSphinxASR, WhisperASR, build_pocketsphinx_lm
    from audiolang.data.synthesis import Voice, check_engines, synthesize

    try:
        check_engines({"espeak-ng"})
    except RuntimeError as error:
        pytest.skip(str(error))
    lm_path, dict_path = build_pocketsphinx_lm(TEXTS, tmp_path / "lm")
    folder = tmp_path / "folder"
    shutil.copytree(folders["dsclap"], folder)
    save_asr_config(folder, "pocketsphinx", lm_path=str(lm_path), dict_path=str(dict_path))
    # A 30 s window and one thread: the random Whisper never ends a transcript, and would be decoded again in 30 s.
    whisper_kwargs = {"min_window_s": 30.0, "max_tokens_per_second": 2.0, "num_threads": 1}
    save_inference_asr(folder, f"whisper:{whisper_tiny_checkpoint}", **whisper_kwargs)

    voice = Voice("espeak-en-us+m1", "espeak-ng", "en-us+m1", "m")
    speech = [synthesize(voice, text) for text in ("navigate home", "open the window")]
    whisper = WhisperASR(whisper_tiny_checkpoint, **whisper_kwargs).transcribe(speech, 16_000)
    sphinx = PocketSphinxASR(lm_path=lm_path, dict_path=dict_path).transcribe(speech, 16_000)
    assert whisper != sphinx and all(sphinx)
    classifier = _classifier(folder)
    assert _transcripts(classifier(speech, sampling_rate=16_000, batch_size=2)) == whisper
    training = saved_asr_config(folder)
    assert _transcripts(classifier(speech, sampling_rate=16_000, batch_size=2, asr=training)) == sphinx


TRUST_REMOTE_CODE_PIPELINE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from transformers import pipeline
    folder, clip = sys.argv[1], np.load(sys.argv[2])
    classifier = pipeline("audio-text-classification", model=folder, trust_remote_code=True, device="cpu")
    result = classifier(clip, sampling_rate=16000, transcript="open the window", top_k=None)
    try:
        classifier(clip, sampling_rate=16000)
        error = ""
    except ValueError as e:
        error = str(e)
    print(json.dumps({"module": type(classifier).__module__, "result": result, "error": error}))
    """
)


def test_trust_remote_code_pipeline_without_audiolang(folders, clips, run_without_audiolang, tmp_path):
    folder = tmp_path / "exported"
    shutil.copytree(folders["turbo"], folder)
    save_asr_config(folder, "pocketsphinx")
    config = json.loads((folder / "config.json").read_text())
    assert config["custom_pipelines"][TASK] == {
        "impl": "audio_text_classification.AudioTextClassificationPipeline",
        "pt": ["AutoModelForSequenceClassification"],
        "type": "multimodal",
    }
    np.save(tmp_path / "clip.npy", clips[0])
    report = run_without_audiolang(
        TRUST_REMOTE_CODE_PIPELINE, folder, tmp_path / "clip.npy", workdir=tmp_path
    )
    assert report["module"].startswith("transformers_modules.")
    expected = _classifier(folder)(clips[0], sampling_rate=16_000, transcript="open the window", top_k=None)
    assert [item["label"] for item in report["result"]] == [item["label"] for item in expected]
    assert [item["score"] for item in report["result"]] == pytest.approx(
        [item["score"] for item in expected], abs=1e-6
    )
    # The folder's recogniser comes from audiolang: without it, the pipeline says what to do.
    assert "pip install audiolang" in report["error"] and "transcript=" in report["error"]


def test_zero_shot_audio_classification_on_a_turbo_folder(folders, clips):
    """transformers' own zero-shot pipeline on a fine-tuned Turbo folder (its joint space, without the classifier)."""
    classifier = pipeline("zero-shot-audio-classification", model=str(folders["turbo"]), device="cpu")
    labels = ["music", "window", "radio"]
    result = classifier(clips[0], candidate_labels=labels, hypothesis_template="open the {}")
    model = AutoModel.from_pretrained(folders["turbo"]).eval()
    assert type(model).__name__ == "TurboModel"
    processor = AutoProcessor.from_pretrained(folders["turbo"])
    audio = processor(audio=[clips[0]], sampling_rate=16_000, return_tensors="pt")
    text = processor.tokenizer([f"open the {label}" for label in labels], padding=True, return_tensors="pt")
    with torch.no_grad():
        probs = model(**audio, **text).logits_per_audio[0].softmax(-1)
    expected = {label: float(p) for label, p in zip(labels, probs, strict=True)}
    assert {item["label"]: item["score"] for item in result} == pytest.approx(expected, abs=1e-5)
