"""Training helpers: the audio+text collator, dataset preparation, retrieval metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from datasets import Audio, ClassLabel, Dataset, DatasetDict, Features, Value
from transformers import BertTokenizerFast

from audiolang import DsclapConfig, DsclapProcessor
from audiolang.training import (
    DataCollatorForAudioText,
    add_length_column,
    drop_empty_transcripts,
    few_shot,
    retrieval_metrics,
    task_dataset,
)

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "open", "the", "window", "call", "mom"]


@pytest.fixture
def processor(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB))
    tokenizer = BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"))
    return DsclapProcessor.from_config(DsclapConfig.from_preset("tiny"), tokenizer)


def rows(n: int = 3, rate: int = 16_000) -> list[dict]:
    rng = np.random.default_rng(0)
    texts = ["open the window", "", "call mom"]
    return [
        {
            "audio": {
                "array": rng.standard_normal(1600 * (i + 1)).astype(np.float32) * 0.1,
                "sampling_rate": rate,
            },
            "asr_text": texts[i % 3],
            "labels": i % 2,
        }
        for i in range(n)
    ]


def test_collator_pads_and_labels(processor):
    batch = DataCollatorForAudioText(processor, label_column="labels")(rows())
    assert batch["input_values"].shape == (3, 4800)
    assert batch["audio_attention_mask"].sum(dim=1).tolist() == [1600, 3200, 4800]
    assert batch["labels"].dtype == torch.long and batch["labels"].tolist() == [0, 1, 0]
    # an empty transcript (the recogniser heard nothing) is kept, encoded as [UNK]
    assert batch["input_ids"][1][1].item() == VOCAB.index("[UNK]")
    float_labels = [dict(r, labels=float(r["labels"]) + 0.5) for r in rows()]
    assert (
        DataCollatorForAudioText(processor, label_column="labels")(float_labels)["labels"].dtype
        == torch.float32
    )


def test_collator_refuses_another_sampling_rate(processor):
    with pytest.raises(ValueError, match="8000 Hz.*Audio\\(sampling_rate=16000\\)"):
        DataCollatorForAudioText(processor)(rows(rate=8000))


def test_collator_crops_over_long_audio_to_the_documented_limit(processor):
    long = [
        {
            "audio": {"array": np.full(90_000, 0.1, np.float32), "sampling_rate": 16_000},
            "asr_text": "call mom",
        }
    ]
    assert DataCollatorForAudioText(processor)(long)["input_values"].shape[1] == 80_000
    with pytest.raises(ValueError):
        DataCollatorForAudioText(processor, truncate_audio=False)(long)


def test_retrieval_metrics_by_hand():
    audio = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    text = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    # sims rows (audio): a0 -> t0 best (1.0 vs .6, 0) rank 0; a1 -> [0, .8, 1.0]: partner t1 (.8) rank 1;
    # a2 -> [.6, 1.0, .8]: partner t2 (.8) rank 1. text->audio: t0 rank 0; t1 -> [.6, .8, 1.0] rank 1;
    # t2 -> [0, 1, .8] rank 1.
    m = retrieval_metrics(audio, text, ks=(1, 2))
    assert m["audio_to_text_r@1"] == pytest.approx(1 / 3) and m["audio_to_text_r@2"] == 1.0
    assert m["text_to_audio_r@1"] == pytest.approx(1 / 3) and m["text_to_audio_r@2"] == 1.0
    with pytest.raises(ValueError, match="differ in shape"):
        retrieval_metrics(audio, text[:2])


def corpus_like() -> DatasetDict:
    features = Features(
        {
            "asr_text": Value("string"),
            "intent": ClassLabel(names=["a", "b"]),
            "directed": ClassLabel(names=["n", "d"]),
            "speaker_id": Value("string"),
            "duration": Value("float32"),
            "valence": Value("float32"),
        }
    )
    data = {
        "asr_text": ["x", "", "y", "z"],
        "intent": [0, -1, 1, 1],
        "directed": [1, 0, 1, 1],
        "speaker_id": ["s2", "s1", "s2", "s3"],
        "duration": [1.0, 0.5, 2.0, 0.25],
        "valence": [0.5, -1.0, 0.0, 2.0],
    }
    return DatasetDict({"train": Dataset.from_dict(data, features=features)})


def test_task_dataset_labels():
    intent, names = task_dataset(corpus_like(), "intent")
    assert names == ["a", "b"] and intent["train"]["labels"] == [0, 1, 1]  # passenger talk dropped
    directed, names = task_dataset(corpus_like(), "directed")
    assert names == ["n", "d"] and directed["train"]["labels"] == [1, 0, 1, 1]
    speaker, names = task_dataset(corpus_like(), "speaker")
    assert names == ["s1", "s2", "s3"] and speaker["train"]["labels"] == [1, 0, 1, 2]
    valence, names = task_dataset(corpus_like(), "valence")
    assert names is None and valence["train"]["labels"] == pytest.approx([0.5, -1.0, 0.0, 2.0])
    with pytest.raises(ValueError, match="unknown task"):
        task_dataset(corpus_like(), "mood")


def test_lengths_empty_transcripts_and_few_shot():
    ds = corpus_like()["train"]
    assert add_length_column(ds)["length"] == [16000, 8000, 32000, 4000]
    audio_only = Dataset.from_dict({"audio": [{"array": np.zeros(123), "sampling_rate": 16_000}]})
    assert add_length_column(audio_only)["length"] == [123]
    assert drop_empty_transcripts(ds, "asr_text")["asr_text"] == ["x", "y", "z"]
    a, b = few_shot(ds, 2, seed=1), few_shot(ds, 2, seed=1)
    assert a["speaker_id"] == b["speaker_id"] and a.num_rows == 2
    assert few_shot(ds, None, seed=1).num_rows == 4 and few_shot(ds, 10, seed=1).num_rows == 4
    with pytest.raises(ValueError, match="train_size must be positive"):
        few_shot(ds, 0, seed=1)


def test_decoded_audio_column_round_trip(processor, tmp_path):
    """The collator reads torchcodec-decoded datasets Audio columns, not only dicts."""
    import soundfile as sf

    path = tmp_path / "a.wav"
    sf.write(path, (np.random.default_rng(0).standard_normal(3200) * 0.1).astype(np.float32), 16_000)
    ds = Dataset.from_dict({"audio": [str(path)], "asr_text": ["call mom"]}).cast_column(
        "audio", Audio(16_000)
    )
    batch = DataCollatorForAudioText(processor)([ds[0]])
    assert batch["input_values"].shape == (1, 3200)


def test_module_learning_rates_reach_the_optimizer(tmp_path):
    from transformers import TrainingArguments

    from audiolang import DsclapModel
    from audiolang.training import ModuleLearningRateTrainer

    model = DsclapModel(DsclapConfig.from_preset("tiny"))
    args = TrainingArguments(
        output_dir=str(tmp_path), learning_rate=1e-3, weight_decay=0.01, report_to="none"
    )
    trainer = ModuleLearningRateTrainer(model=model, args=args, module_learning_rates={"text_model.": 2e-5})
    optimizer = trainer.create_optimizer()
    lr_of = {id(p): (g["lr"], g["weight_decay"]) for g in optimizer.param_groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert lr_of[id(named["text_model.embeddings.word_embeddings.weight"])] == (2e-5, 0.01)
    assert lr_of[id(named["text_model.encoder.layer.0.attention.self.query.bias"])] == (2e-5, 0.0)  # no decay
    assert lr_of[id(named["audio_model.encoder.layers.0.attention.q_proj.weight"])] == (1e-3, 0.01)
    assert lr_of[id(named["logit_scale"])][0] == 1e-3
    assert len(lr_of) == sum(p.requires_grad for p in model.parameters())  # every trainable parameter, once
    plain = ModuleLearningRateTrainer(model=model, args=args).create_optimizer()
    assert {g["lr"] for g in plain.param_groups} == {1e-3}
    unset = ModuleLearningRateTrainer(model=model, args=args, module_learning_rates={"text_model.": None})
    assert {g["lr"] for g in unset.create_optimizer().param_groups} == {
        1e-3
    }  # an unset option: the default rate


def test_load_splits_names_a_lone_dataset(tmp_path):
    from audiolang.training import load_splits

    corpus_like()["train"].save_to_disk(str(tmp_path / "lone"))
    corpus_like().save_to_disk(str(tmp_path / "dict"))
    assert list(load_splits(str(tmp_path / "lone"), single_split_name="pretrain")) == ["pretrain"]
    assert list(load_splits(str(tmp_path / "dict"))) == ["train"]


def test_build_dsclap_takes_any_text_encoder_distilbert_included(tmp_path, dsclap_tokenizer):
    """The text tower gets the package's `text_encoder_kwargs` (BERT loses its pooler; DistilBERT has none to lose),
    keeps its pretrained weights, and brings its own tokenizer."""
    from transformers import DistilBertConfig, DistilBertModel, DistilBertTokenizerFast

    from audiolang.training import build_dsclap

    torch.manual_seed(0)
    config = DistilBertConfig(vocab_size=len(dsclap_tokenizer), dim=32, n_layers=1, n_heads=2, hidden_dim=64)
    DistilBertModel(config).save_pretrained(tmp_path / "distilbert")
    DistilBertTokenizerFast(vocab=dsclap_tokenizer.get_vocab()).save_pretrained(tmp_path / "distilbert")

    model, processor = build_dsclap(str(tmp_path / "distilbert"), preset="tiny", num_hard_negatives=2)
    assert type(model.text_model).__name__ == "DistilBertModel" and model.config.num_hard_negatives == 2
    saved = DistilBertModel.from_pretrained(tmp_path / "distilbert").state_dict()
    assert all(torch.equal(saved[k], v) for k, v in model.text_model.state_dict().items())
    words = ["[CLS]", "open", "the", "window", "[SEP]"]
    assert processor.tokenizer("open the window").input_ids == dsclap_tokenizer.convert_tokens_to_ids(words)
    clips = [(0.1 * np.random.default_rng(i).standard_normal(4000)).astype(np.float32) for i in range(2)]
    inputs = processor(
        audio=clips, text=["open the window", "call mom"], sampling_rate=16_000, return_tensors="pt"
    )
    assert model(**inputs).logits_per_audio.shape == (2, 2)


def test_loss_parts_are_logged_as_their_means(tmp_path):
    """Each `*_loss` field of the output is logged beside `loss` as its mean over the interval, and reported by
    `evaluate` as `eval_<part>`; the means are checked against forward passes run by hand."""
    from transformers import TrainingArguments

    from audiolang import DsclapModel
    from audiolang.training import AudioTextTrainer

    torch.manual_seed(0)
    model = DsclapModel(DsclapConfig.from_preset("tiny")).eval()
    rng = np.random.default_rng(0)
    batches = [
        {
            "input_values": torch.from_numpy(rng.standard_normal((3, 4000)).astype(np.float32)),
            "input_ids": torch.tensor([[2, 5, 6, 3], [2, 7, 3, 0], [2, 8, 9, 3]]),
            "attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 1, 1]]),
        }
        for _ in range(2)
    ]
    with torch.no_grad():
        expected = [model(**batch) for batch in batches]
    parts = ["audio_contrastive_loss", "audio_matching_loss", "text_contrastive_loss", "text_matching_loss"]
    args = TrainingArguments(
        output_dir=str(tmp_path), report_to="none", per_device_eval_batch_size=3, remove_unused_columns=False
    )
    # Rows name the prepared batch they belong to: evaluation sees exactly the batches run by hand.
    trainer = AudioTextTrainer(
        model=model, args=args, data_collator=lambda rows: dict(batches[rows[0]["batch"]])
    )
    with torch.no_grad():
        for batch in batches:
            trainer.compute_loss(model, batch)
    trainer.log({"loss": 1.0})
    logged = trainer.state.log_history[-1]
    for part in parts:
        assert logged[part] == pytest.approx(float(sum(out[part] for out in expected) / 2), rel=1e-6)
    trainer.log({"loss": 1.0})  # a new interval starts empty
    assert not set(parts) & set(trainer.state.log_history[-1])

    metrics = trainer.evaluate(eval_dataset=Dataset.from_dict({"batch": [0, 0, 0, 1, 1, 1]}))
    for part in parts:
        assert metrics[f"eval_{part}"] == pytest.approx(
            float(sum(out[part] for out in expected) / 2), rel=1e-5
        )


def test_check_audio_names_every_bad_row_then_skips_them(tmp_path, audio_text_split):
    """Split, row and file of each bad clip, all in one error; `skip` drops exactly those rows. The checks are a
    `datasets.map` cached beside the dataset's files."""
    import io

    import soundfile as sf
    from datasets import load_from_disk

    from audiolang.training import check_audio, find_bad_audio

    def wav(samples: np.ndarray, rate: int = 16_000, subtype: str = "FLOAT") -> dict:
        buffer = io.BytesIO()
        sf.write(buffer, samples, rate, format="WAV", subtype=subtype)
        return {"bytes": buffer.getvalue(), "path": None}

    on_disk = tmp_path / "clip.wav"
    sf.write(on_disk, np.zeros(4000, np.float32), 16_000)
    nan = np.full(4000, 0.1, np.float32)
    nan[7] = np.nan
    train = audio_text_split(6, 0, replace={1: {"bytes": None, "path": str(on_disk)}, 4: wav(nan)})
    validation = audio_text_split(4, 1, replace={0: wav(np.full(300, 0.1, np.float32)), 3: wav(np.zeros(0))})
    DatasetDict(train=train, validation=validation).save_to_disk(str(tmp_path / "data"))
    splits = load_from_disk(str(tmp_path / "data"))

    with pytest.raises(ValueError) as error:
        check_audio(splits, min_samples=400)
    assert str(error.value).splitlines()[1:5] == [
        "  split 'train' row 1 (clip.wav): silent (peak amplitude 0.0e+00)",  # the name the dataset stores
        "  split 'train' row 4 (audio stored in the dataset): 1 NaN/inf samples",
        "  split 'validation' row 0 (audio stored in the dataset): too short: 300 samples, the audio encoder needs "
        "at least 400",
        "  split 'validation' row 3 (audio stored in the dataset): empty: no audio frames could be decoded",
    ]
    kept = check_audio(splits, min_samples=400, bad_audio="skip")
    assert kept["train"]["asr_text"] == [t for i, t in enumerate(train["asr_text"]) if i not in (1, 4)]
    assert kept["validation"].num_rows == 2
    # Cached with the dataset: the map's result file sits beside the split's own files, and is reused.
    assert any(p.name.startswith("cache-") for p in (tmp_path / "data" / "train").iterdir())
    assert [clip.row for clip in find_bad_audio(splits["train"], "train", min_samples=400)] == [1, 4]


def test_audio_check_cache_is_not_read_back_by_other_checking_code(tmp_path, audio_text_split, monkeypatch):
    """The cached checks are keyed by the checking modules' source: once the code that inspects a clip changes (an
    upgrade), the old cache file (written without the new checks' columns) is not reused. `datasets` alone hashes
    only the mapped function, not the helpers it calls, and served the stale file."""
    from datasets import load_from_disk

    from audiolang.training import audio_checks, find_bad_audio

    audio_text_split(4, 0).save_to_disk(str(tmp_path / "data"))
    split = load_from_disk(str(tmp_path / "data"))
    assert find_bad_audio(split, "train") == []  # writes the cache

    def every_clip_is_bad(value, audio_feature, sampling_rate, min_samples):
        return "rejected by the new checks", ""

    monkeypatch.setattr(audio_checks, "_inspect", every_clip_is_bad)
    source = audio_checks.inspect.getsource
    monkeypatch.setattr(
        audio_checks.inspect, "getsource", lambda module: source(module) + "\n# the new checks"
    )
    assert [clip.row for clip in find_bad_audio(split, "train")] == [0, 1, 2, 3]


def test_collation_errors_name_the_dataset_row(processor):
    silent = {"array": np.zeros(1600, np.float32), "sampling_rate": 16_000}
    features = [dict(row, row_index=i) for row, i in zip(rows(3), (7, 12, 30), strict=True)]
    features[1]["audio"] = silent
    with pytest.raises(ValueError, match=r"^dataset row 12: `audio` is silent"):
        DataCollatorForAudioText(processor, index_column="row_index")(features)
    with pytest.raises(ValueError, match=r"^row 1 of the batch: `audio` is silent"):
        DataCollatorForAudioText(processor)(features)
    features[1]["audio"] = {"array": np.ones(1600, np.float32), "sampling_rate": 8_000}
    with pytest.raises(ValueError, match=r"^dataset row 12: `audio` is sampled at 8000 Hz"):
        DataCollatorForAudioText(processor, index_column="row_index")(features)


def test_min_audio_samples_is_the_convolution_stems_receptive_field():
    from audiolang import CtalFeatureExtractor, DsclapFeatureExtractor, DsclapModel
    from audiolang.training import min_audio_samples

    audio_config = DsclapConfig.from_preset("tiny").audio_config
    # The receptive field of stacked strided convolutions: 1 + sum_i (k_i - 1) * prod_{j<i} s_j.
    field, stride = 1, 1
    for kernel, step in zip(audio_config.conv_kernel, audio_config.conv_stride, strict=True):
        field, stride = field + (kernel - 1) * stride, stride * step
    model = DsclapModel(DsclapConfig.from_preset("tiny"))
    assert min_audio_samples(DsclapFeatureExtractor(), model.audio_model) == field
    assert min_audio_samples(CtalFeatureExtractor()) == (9 - 1) * 200  # 9 delta frames, hop 200


def test_k_fold_splits_partition_the_pool():
    from audiolang.training import k_fold_splits

    pool = Dataset.from_dict({"i": list(range(23))})
    runs = k_fold_splits(pool, 5, seed=3)
    tested = sorted(i for run_ in runs for i in run_["test"]["i"])
    assert tested == list(range(23))
    for run_ in runs:
        parts = [set(run_[name]["i"]) for name in ("train", "validation", "test")]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        assert len(parts[0]) + len(parts[1]) + len(parts[2]) == 23
    assert k_fold_splits(pool, 5, seed=3)[0]["test"]["i"] == runs[0]["test"]["i"]  # seeded
    with pytest.raises(ValueError, match="num_folds` must be >= 3"):
        k_fold_splits(pool, 2, seed=3)


def test_summarise_runs_by_hand():
    from audiolang.metrics import summarise_runs

    runs = [
        {"test_accuracy": 0.5, "test_runtime": 3.0, "train_size": 8},
        {"test_accuracy": 0.7, "test_runtime": 1.0, "train_size": 8},
        {"test_accuracy": 0.9, "test_runtime": 2.0, "train_size": 9},
    ]
    summary = summarise_runs(runs)
    assert summary["test_accuracy"] == pytest.approx(0.7)
    assert summary["test_accuracy_std"] == pytest.approx(0.2)  # sample standard deviation: sqrt(0.08 / 2)
    assert "test_runtime" not in summary and summary["folds"] == runs  # bookkeeping is not averaged
    assert summarise_runs(runs[:1]) == runs[0]


def test_evaluation_leaves_the_training_random_stream_where_it_was(processor):
    """An evaluation inside a run (e.g. run_pretrain's initial retrieval) must not shift what the training draws next:
    iterating a DataLoader (and a progress bar around it) draws from torch's global generator."""
    from audiolang import DsclapModel
    from audiolang.training import embed_dataset

    dataset = Dataset.from_list([r for r in rows(4) if r["asr_text"]])
    model = DsclapModel(DsclapConfig.from_preset("tiny"))
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    audio, text = embed_dataset(model, processor, dataset, "asr_text", batch_size=2)
    assert audio.shape[0] == text.shape[0] == dataset.num_rows
    assert torch.equal(torch.rand(3), expected)
    # the bare loop the guard protects against does move it
    torch.manual_seed(0)
    for _ in torch.utils.data.DataLoader(list(range(4)), batch_size=2):
        pass
    assert not torch.equal(torch.rand(3), expected)
