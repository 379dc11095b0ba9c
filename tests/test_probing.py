"""audiolang.probing: linear probes of frozen representations, the log-mel baseline, and each family's streams."""

from __future__ import annotations

import sys
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch
from datasets import Audio, ClassLabel, Dataset, DatasetDict, Value
from scipy.stats import pearsonr
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from transformers import WhisperConfig

from audiolang import (
    CtalConfig,
    CtalFeatureExtractor,
    CtalForPreTraining,
    CtalProcessor,
    LratConfig,
    LratForPreTraining,
    LratProcessor,
    TurboConfig,
    TurboModel,
    TurboProcessor,
    train_ctal_tokenizer,
)
from audiolang.data.asr import audio_to_array
from audiolang.metrics import speaker_verification_eer
from audiolang.probing import (
    AUDIO_LAYER_STREAM,
    LOG_MEL_STREAM,
    PROBE_ALPHAS,
    PROBE_CS,
    PROBE_FAMILIES,
    audio_layer_streams,
    extract_representations,
    fit_probe,
    load_probe_model,
    log_mel_statistics,
    probe_features,
    probe_representations,
    representation_spread,
    swap_transcripts,
    text_dependence,
)
from audiolang.training import DataCollatorForAudioText

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

# --- the probes themselves -------------------------------------------------------------------------------------------


def gaussian_classes(centres: np.ndarray, per_class: int, spread: float, seed: int):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(centres)), per_class)
    return centres[labels] + spread * rng.standard_normal((labels.size, centres.shape[1])), labels


@pytest.mark.parametrize("spread", [0.1, 4.0], ids=["separable", "overlapping"])
def test_classification_probe_equals_sklearns_own_pipeline(spread: float) -> None:
    centres = np.random.default_rng(0).normal(0.0, 3.0, (3, 8))
    train_x, train_y = gaussian_classes(centres, 20, spread, seed=1)
    test_x, test_y = gaussian_classes(centres, 10, spread, seed=2)
    result = fit_probe("emotion", train_x, train_y, test_x, test_y, seed=3)

    # C by 3-fold stratified cross-validation on the training rows, scaling fitted inside each fold.
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=3)
    scores = [
        cross_val_score(
            make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000)),
            train_x,
            train_y,
            cv=folds,
        ).mean()
        for c in PROBE_CS
    ]
    best = PROBE_CS[int(np.argmax(scores))]
    final = make_pipeline(StandardScaler(), LogisticRegression(C=best, max_iter=2000)).fit(train_x, train_y)
    predicted = final.predict(test_x)
    assert result["c"] == best
    assert result["accuracy"] == accuracy_score(test_y, predicted)
    recalls = [np.mean(predicted[test_y == k] == k) for k in range(3)]
    assert result["ua"] == pytest.approx(np.mean(recalls))
    if spread < 1:
        assert result["accuracy"] == 1.0


def test_valence_probe_equals_ridge_cv() -> None:
    rng = np.random.default_rng(0)
    weights = rng.normal(size=6)
    train_x, test_x = rng.normal(size=(80, 6)), rng.normal(size=(40, 6))
    train_y = train_x @ weights + 0.5 * rng.normal(size=80)
    test_y = test_x @ weights + 0.5 * rng.normal(size=40)
    result = fit_probe("valence", train_x, train_y, test_x, test_y)
    expected = make_pipeline(StandardScaler(), RidgeCV(alphas=PROBE_ALPHAS)).fit(train_x, train_y)
    predicted = expected.predict(test_x)
    assert result["alpha"] == expected[-1].alpha_
    assert result["r2"] == pytest.approx(r2_score(test_y, predicted))
    assert result["pearson"] == pytest.approx(pearsonr(predicted, test_y).statistic)
    assert result["mae"] == pytest.approx(np.abs(predicted - test_y).mean())
    assert result["r2"] > 0.8


def test_a_class_with_one_training_row_is_a_clear_error() -> None:
    x = np.random.default_rng(0).normal(size=(5, 3))
    with pytest.raises(ValueError, match="at least 2 training rows of every class"):
        fit_probe("intent", x, np.array([0, 0, 1, 1, 2]), x, np.array([0, 0, 1, 1, 2]))


def test_speaker_verification_is_the_eer_of_the_same_vectors() -> None:
    rng = np.random.default_rng(0)
    speakers = [f"s{i % 4}" for i in range(16)]
    vectors = rng.normal(size=(16, 5)) + 2 * np.eye(5)[[i % 4 for i in range(16)]]
    splits = DatasetDict(speaker_test=Dataset.from_dict({"speaker_id": speakers}))
    (record,) = probe_features({"speaker_test": {"audio": vectors}}, splits, tasks=["speaker_verification"])
    assert record == {
        "stream": "audio",
        "task": "speaker_verification",
        "test_rows": 16,
        "eer": speaker_verification_eer(vectors, speakers).eer,
    }


def test_probe_features_keeps_each_tasks_rows_aligned() -> None:
    """Intent keeps the directed rows only: the features of exactly those rows must reach the probe. The feature of a
    row is its intent label (or noise where it has none), so any misalignment costs accuracy."""
    rng = np.random.default_rng(0)

    def split(size: int) -> tuple[Dataset, np.ndarray]:
        directed = rng.integers(0, 2, size)
        intent = np.where(directed == 1, rng.integers(0, 3, size), -1)
        features = np.where(intent[:, None] >= 0, np.eye(3)[intent] * 10, rng.normal(size=(size, 3)))
        data = Dataset.from_dict({"intent": intent.tolist(), "directed": directed.tolist()})
        return data.cast_column("directed", ClassLabel(names=["no", "yes"])), features

    (train, train_x), (test, test_x) = split(60), split(30)
    records = probe_features(
        {"train": {"s": train_x}, "test": {"s": test_x}},
        DatasetDict(train=train, test=test),
        tasks=["intent"],
    )
    assert records[0]["train_rows"] == int(np.sum(np.array(train["intent"]) >= 0))
    assert records[0]["test_rows"] == int(np.sum(np.array(test["intent"]) >= 0))
    assert records[0]["accuracy"] == 1.0


def test_text_dependence_by_hand() -> None:
    original = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    swapped = original + np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    # moved: (1 + 0 + 1) / 3; between rows: (5 + 10 + 5) / 3
    assert text_dependence(original, swapped) == pytest.approx((2 / 3) / (20 / 3))


def test_swap_transcripts_is_a_seeded_derangement() -> None:
    data = Dataset.from_dict({"asr_text": [f"t{i}" for i in range(7)], "audio_id": list(range(7))})
    swapped = swap_transcripts(data, seed=3)
    assert swapped["audio_id"] == data["audio_id"]
    assert sorted(swapped["asr_text"]) == sorted(data["asr_text"])
    assert all(a != b for a, b in zip(swapped["asr_text"], data["asr_text"], strict=True))
    assert swap_transcripts(data, seed=3)["asr_text"] == swapped["asr_text"]


def test_unknown_task_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="Unknown probe task"):
        probe_features({"train": {"s": np.zeros((2, 2))}}, DatasetDict(), tasks=["gender"])


# --- the log-mel baseline --------------------------------------------------------------------------------------------


def clips_dataset(amplitudes: list[float], lengths: list[int]) -> Dataset:
    """Tones over noise, one per amplitude, as a decoded `Audio` column."""

    rng = np.random.default_rng(0)
    clips = [
        (a * np.sin(2 * np.pi * 220 * np.arange(n) / 16_000) + 0.01 * rng.standard_normal(n)).astype(
            np.float32
        )
        for a, n in zip(amplitudes, lengths, strict=True)
    ]
    data = Dataset.from_dict({"audio": [{"array": c, "sampling_rate": 16_000} for c in clips]})
    return data.cast_column("audio", Audio(sampling_rate=16_000))


def test_log_mel_statistics_equal_a_numpy_computation_per_clip() -> None:
    """Mean and (population) standard deviation over frames of librosa's log-mel + delta, for clips of different
    lengths batched together (padding never counts)."""
    data = clips_dataset([0.5, 0.1, 0.3], [8000, 4800, 11_200])
    statistics = log_mel_statistics(data, batch_size=3)
    for row in range(data.num_rows):
        clip, _ = audio_to_array(data[row]["audio"])
        mel = librosa.feature.melspectrogram(
            y=clip, sr=16_000, n_fft=2048, hop_length=200, win_length=800, n_mels=80
        )
        log_mel = np.log(mel + 1e-6)
        features = np.concatenate([log_mel, librosa.feature.delta(log_mel)]).T
        expected = np.concatenate([features.mean(axis=0), features.std(axis=0)])
        np.testing.assert_allclose(statistics[row], expected, rtol=1e-4, atol=1e-4)


def test_log_mel_statistics_refuse_audio_at_another_rate_with_the_shared_validator_message() -> None:
    data = Dataset.from_dict({"audio": [{"array": np.zeros(8000, np.float32), "sampling_rate": 8_000}]})
    data = data.cast_column("audio", Audio(sampling_rate=8_000))
    with pytest.raises(ValueError, match=r"is 8000 Hz but this feature extractor expects 16000 Hz: resample"):
        log_mel_statistics(data)


def test_log_mel_probe_reads_the_level_that_normalisation_removes() -> None:
    """End to end on audio: loud and quiet clips are told apart from the log-mel statistics (unnormalised features)."""
    loud = [0.5, 0.6, 0.55, 0.45, 0.5, 0.6]
    quiet = [0.02, 0.03, 0.025, 0.02, 0.03, 0.025]
    amplitudes = [a for pair in zip(loud, quiet, strict=True) for a in pair]
    data = clips_dataset(amplitudes, [4000 + 400 * i for i in range(12)])
    data = data.add_column("emotion", [0, 1] * 6).cast_column("emotion", ClassLabel(names=["angry", "sad"]))
    splits = DatasetDict(train=data.select(range(8)), test=data.select(range(8, 12)))
    (record,) = probe_representations(None, None, splits, tasks=["emotion"], progress=False)
    assert record["stream"] == LOG_MEL_STREAM and record["accuracy"] == 1.0
    # Per-utterance normalisation leaves every clip with mean 0 and standard deviation 1: nothing to tell apart.
    normalised = log_mel_statistics(data, feature_extractor=CtalFeatureExtractor(do_normalize=True))
    np.testing.assert_allclose(normalised[:, :160], 0.0, atol=1e-4)
    np.testing.assert_allclose(normalised[:, 160:], 1.0, atol=1e-2)  # the 1e-7 variance floor of flat bands


# --- the families' streams -------------------------------------------------------------------------------------------


TEXTS = ["navigate home", "open the window", "play some music", "call mom"]


def ctal_style_tokenizer():
    return train_ctal_tokenizer(TEXTS * 10, vocab_size=300)


def tiny(config_class, **overrides):
    # Dropout on: a representation read in training mode would differ from the eval-mode hand computation.
    defaults = {"hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "max_audio_frames": 256}
    return config_class.from_preset("tiny", **{**defaults, **overrides})


def save_pretraining_model(folder: Path, config_class, model_class, processor_class) -> Path:
    """A tiny pre-training model of a family with its own byte-level BPE (CTAL, lrat), saved with its processor."""
    tokenizer = ctal_style_tokenizer()
    config = tiny(config_class, vocab_size=len(tokenizer))
    torch.manual_seed(0)
    model_class(config).save_pretrained(folder)
    processor_class.from_config(config, tokenizer).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def ctal_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny `CtalForPreTraining` (no attention pooling: the probe initialises it from its seed)."""
    return save_pretraining_model(
        tmp_path_factory.mktemp("ctal"), CtalConfig, CtalForPreTraining, CtalProcessor
    )


@pytest.fixture(scope="module")
def rows(audio_text_split) -> Dataset:
    return audio_text_split(5, seed=7)


def test_ctal_streams_equal_the_models_forward_pooled_by_hand(ctal_checkpoint: Path, rows: Dataset) -> None:
    """Each row run alone through the backbone in eval mode and pooled by hand (softmax attention over the real
    frames, max over the real positions, `<s>` for the text): what the probe reads from padded batches of a model
    handed over in training mode (dropout must be off), and the fusion is the head's own `embeddings`."""
    model, processor = load_probe_model(str(ctal_checkpoint), seed=0)
    assert not model.training
    streams = extract_representations(model.train(), processor, rows, batch_size=5)
    model.eval()
    again, _ = load_probe_model(str(ctal_checkpoint), seed=0)
    pooling = again.audio_attention_pooling
    assert torch.equal(pooling.score.weight, model.audio_attention_pooling.score.weight)  # seeded

    collator = DataCollatorForAudioText(processor)
    for row in range(rows.num_rows):
        inputs = collator([rows[row]])
        with torch.no_grad():
            out = model.ctal(**inputs)
            text, audio = out.text_last_hidden_state[0], out.audio_last_hidden_state[0]
            weights = torch.softmax(pooling.score(torch.tanh(pooling.projection(audio))).squeeze(-1), dim=0)
        audio_attention, audio_max = (weights[:, None] * audio).sum(0), audio.max(0).values
        text_attention, text_max = text[0], text.max(0).values
        assert inputs["input_ids"][0, 0] == processor.tokenizer.bos_token_id
        expected = {
            "text": torch.cat([text_attention, text_max]),
            "audio": torch.cat([audio_attention, audio_max]),
            "fusion": torch.cat([audio_attention + text_attention, audio_max + text_max]),
        }
        for name, vector in expected.items():
            np.testing.assert_allclose(streams[name][row], vector.numpy(), atol=2e-5, err_msg=name)
    with torch.no_grad():
        head = model(**collator([rows[i] for i in range(rows.num_rows)]))
    np.testing.assert_allclose(streams["fusion"], head.embeddings.numpy(), atol=2e-5)


def test_unknown_family_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ValueError, match="No probe for model_type 'bert'"):
        load_probe_model(str(tmp_path))


@pytest.fixture(scope="module")
def lrat_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_pretraining_model(
        tmp_path_factory.mktemp("lrat"), LratConfig, LratForPreTraining, LratProcessor
    )


@pytest.fixture(scope="module")
def turbo_checkpoint(tmp_path_factory: pytest.TempPathFactory, dsclap_tokenizer) -> Path:
    folder = tmp_path_factory.mktemp("turbo")
    config = TurboConfig.from_preset("tiny")
    torch.manual_seed(0)
    TurboModel(config).save_pretrained(folder)
    TurboProcessor.from_config(config, dsclap_tokenizer).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("family", sorted(PROBE_FAMILIES))
def test_every_family_reads_its_own_outputs(
    family: str, rows: Dataset, ctal_checkpoint, lrat_checkpoint, turbo_checkpoint, dsclap_checkpoint
) -> None:
    """Every registry entry runs on a tiny saved model: its streams, one row per dataset row, equal the model's own
    outputs computed on the whole batch."""
    folder = {
        "ctal": ctal_checkpoint,
        "lrat": lrat_checkpoint,
        "turbo": turbo_checkpoint,
        "dsclap": dsclap_checkpoint,
    }[family]
    model, processor = load_probe_model(str(folder))
    assert model.config.model_type == family and not model.training
    streams = extract_representations(model, processor, rows, batch_size=2)
    assert list(streams) == list(PROBE_FAMILIES[family].streams)
    batch = DataCollatorForAudioText(processor)([rows[i] for i in range(rows.num_rows)])
    with torch.no_grad():
        if family in ("dsclap", "turbo"):
            out = model(**batch, return_loss=False)
            expected = {
                "audio": out.audio_model_output.pooler_output,
                "joint": torch.cat([out.audio_embeds, out.text_embeds], dim=-1),
            }
        else:
            out = model(**batch)
            expected = {"fusion": out.embeddings}
            if family == "lrat":  # h_fuse = [text cross encoder; audio cross encoder]
                expected["audio"] = out.embeddings[:, model.config.hidden_size :]
    for name, tensor in expected.items():
        np.testing.assert_allclose(streams[name], tensor.numpy(), atol=2e-5, err_msg=name)
    assert all(array.shape[0] == rows.num_rows for array in streams.values())
    records = probe_representations(
        model, processor, DatasetDict(test=rows), ["text_dependence"], progress=False
    )
    ratios = {record["stream"]: record["ratio"] for record in records}
    assert ratios["text"] > 0.1
    # A dual encoder's audio tower never reads the transcript; CTAL's and lrat's audio streams attend to it.
    assert (ratios["audio"] == 0.0) if family in ("dsclap", "turbo") else (ratios["audio"] > 0.0)


def test_probe_representations_runs_a_model_end_to_end(ctal_checkpoint: Path, rows: Dataset) -> None:
    labelled = rows.add_column("valence", [0.1, -0.4, 0.9, 0.3, -0.2]).cast_column(
        "valence", Value("float32")
    )
    labelled = labelled.add_column("speaker_id", ["a", "b", "a", "b", "a"])
    splits = DatasetDict(train=labelled, test=labelled, speaker_test=labelled)
    model, processor = load_probe_model(str(ctal_checkpoint))
    records = probe_representations(
        model, processor, splits, tasks=["valence", "speaker_verification"], progress=False
    )
    assert [(r["stream"], r["task"]) for r in records] == [
        (stream, task)
        for task in ("valence", "speaker_verification")
        for stream in ("text", "audio", "fusion")
    ]


# --- per-layer audio streams of the dual encoders --------------------------------------------------------------------


@pytest.fixture(scope="module")
def turbo_whisper_checkpoint(tmp_path_factory: pytest.TempPathFactory, dsclap_tokenizer) -> Path:
    """A saved tiny Turbo with a 2-layer Whisper tower that pools a learned (here unequal) weighted sum of its layers."""
    whisper = WhisperConfig(
        d_model=16,
        encoder_layers=2,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        vocab_size=100,
        max_target_positions=32,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
        use_weighted_layer_sum=True,
    )
    config = TurboConfig.from_audio_text_configs(
        whisper, TurboConfig.from_preset("tiny").text_config, preset="tiny"
    )
    torch.manual_seed(0)
    model = TurboModel(config)
    with torch.no_grad():
        model.audio_layer_weights.copy_(torch.tensor([1.0, -0.5, 2.0]))
    folder = tmp_path_factory.mktemp("turbo_whisper")
    model.save_pretrained(folder)
    TurboProcessor.from_config(config, dsclap_tokenizer).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("tower", ["wav2vec2", "whisper"])
def test_audio_layer_streams_are_the_towers_hidden_states_pooled_by_hand(
    tower: str, rows: Dataset, dsclap_checkpoint: Path, turbo_whisper_checkpoint: Path
) -> None:
    """Stream `audio_layer_k`, read from padded batches, equals the mean over all frames of `hidden_states[k]` of the
    tower run on each clip alone. The last layer's stream is the `audio` stream itself, unless the model pools a
    weighted sum of the layers: its `audio` stream is then that softmax-weighted sum of the layer streams (mean
    pooling is linear)."""
    folder = dsclap_checkpoint if tower == "wav2vec2" else turbo_whisper_checkpoint
    model, processor = load_probe_model(str(folder))
    streams = extract_representations(model, processor, rows, batch_size=2, audio_layers=True)
    layers = [AUDIO_LAYER_STREAM.format(k) for k in range(3)]
    assert list(streams) == [*PROBE_FAMILIES[model.config.model_type].streams, *layers]
    assert audio_layer_streams(model) == tuple(layers)

    collator = DataCollatorForAudioText(processor)
    for row in range(rows.num_rows):
        alone = collator([rows[row]])[model.main_input_name]
        with torch.no_grad():
            states = model.audio_model(alone, output_hidden_states=True).hidden_states
        for name, state in zip(layers, states, strict=True):
            np.testing.assert_allclose(streams[name][row], state[0].mean(0).numpy(), atol=2e-5, err_msg=name)
    if tower == "wav2vec2":
        assert model.audio_layer_weights is None
        np.testing.assert_array_equal(streams["audio"], streams[layers[-1]])
    else:
        weights = torch.tensor([1.0, -0.5, 2.0]).softmax(-1).numpy()
        mixed = sum(weight * streams[name] for weight, name in zip(weights, layers, strict=True))
        np.testing.assert_allclose(streams["audio"], mixed, atol=2e-5)
        assert np.abs(streams["audio"] - streams[layers[-1]]).max() > 1e-2


def test_audio_layers_of_a_family_without_an_audio_tower_is_a_clear_error(ctal_checkpoint: Path) -> None:
    model, _ = load_probe_model(str(ctal_checkpoint))
    with pytest.raises(ValueError, match="`audio_layers` probes the audio tower of a dual encoder"):
        audio_layer_streams(model)


def test_layer_curves_and_their_plot(tmp_path: Path) -> None:
    from linear_probe import layer_curves, plot_layer_curves

    summary = [
        {"model": "m", "stream": "audio_layer_1", "task": "emotion", "accuracy": 0.6},
        {"model": "m", "stream": "audio_layer_0", "task": "emotion", "accuracy": 0.4},
        {"model": "m", "stream": "audio", "task": "emotion", "accuracy": 0.5},
        {"model": "m", "stream": "audio_layer_0", "task": "speaker_verification", "eer": 0.3},
        {"model": LOG_MEL_STREAM, "stream": LOG_MEL_STREAM, "task": "emotion", "accuracy": 0.45},
    ]
    expected = {"emotion": {"m": ([0, 1], [0.4, 0.6])}, "speaker_verification": {"m": ([0], [0.3])}}
    assert layer_curves(summary) == expected
    assert plot_layer_curves(summary, tmp_path / "layers.png") == expected
    assert (tmp_path / "layers.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="--audio_layers"):
        plot_layer_curves(summary[2:3], tmp_path / "none.png")


def test_representation_spread_against_hand_values() -> None:
    """k equal singular values give an effective rank of k; rows on one line, of 1; the mean cosine of two
    different rows, computed pair by pair."""
    basis = np.linalg.qr(np.random.default_rng(0).standard_normal((8, 8)))[0]
    # 6 rows spanning 3 orthogonal directions with equal weight, centred by construction (+v and -v)
    rows = np.concatenate([3.0 * basis[:3], -3.0 * basis[:3]])
    assert representation_spread(rows)["effective_rank"] == pytest.approx(3.0)
    line = np.outer(np.arange(1.0, 6.0), basis[0]) + 2.0 * basis[1]
    assert representation_spread(line)["effective_rank"] == pytest.approx(1.0)
    x = np.random.default_rng(1).standard_normal((5, 4))
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    pairs = [unit[i] @ unit[j] for i in range(5) for j in range(5) if i != j]
    assert representation_spread(x)["mean_cosine"] == pytest.approx(np.mean(pairs))
    same = representation_spread(np.tile(x[:1], (4, 1)))
    assert same["mean_cosine"] == pytest.approx(1.0) and same["effective_rank"] == 0.0


def test_spread_is_probed_on_the_test_split_without_fitting() -> None:
    rng = np.random.default_rng(0)
    test = rng.standard_normal((6, 4))
    splits = DatasetDict(test=Dataset.from_dict({"emotion": [0] * 6}))
    (record,) = probe_features({"test": {"audio": test}}, splits, tasks=["spread"])
    assert record == {"stream": "audio", "task": "spread", "test_rows": 6, **representation_spread(test)}
