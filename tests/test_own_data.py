"""A user's own `datasets` data: any source (an `audiofolder`, a CSV of audio paths, a `save_to_disk` folder with one
split), their column names and string labels, through fine-tuning, evaluation and prediction with the column flags
alone; and the pieces underneath (labels as users have them, seeded stratified splits, audio at the model's rate)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from helpers import script_module
from transformers import AutoModelForSequenceClassification

from audiolang.training import (
    DatasetArguments,
    add_missing_splits,
    cast_audio_column,
    infer_task_type,
    load_raw_splits,
    parse_data_files,
    prepare_labels,
    resolve_task,
)

TRAINING = [
    "--per_device_train_batch_size", "4",
    "--per_device_eval_batch_size", "4",
    "--dataloader_num_workers", "0",
    "--disable_tqdm", "true",
    "--use_cpu", "true",
    "--seed", "0",
]  # fmt: skip
LABELS = ("lights", "music", "weather")
# Transcripts from the tiny tokenizer's vocabulary (tests/conftest.py), one phrase per label.
PHRASES = {"lights": "turn on the window", "music": "play some music", "weather": "weather news"}


def _stereo_clip(rng: np.random.Generator, label_index: int, rate: int = 22_050) -> np.ndarray:
    """A 0.4-0.7 s stereo clip, a tone whose pitch depends on the label, left and right channels differing."""
    length = int(rate * rng.uniform(0.4, 0.7))
    t = np.arange(length) / rate
    tone = np.sin(2 * np.pi * (150 + 100 * label_index) * t)
    left = 0.3 * tone + 0.02 * rng.standard_normal(length)
    right = 0.2 * tone + 0.02 * rng.standard_normal(length)
    return np.stack([left, right], axis=1).astype(np.float32)


def _write_audiofolder(root: Path, sizes: dict[str, int], seed: int = 0) -> Path:
    """`root/<split>/*.wav` (22.05 kHz stereo) and `root/<split>/metadata.csv` with `file_name`, `transcription` and
    a string `label`: what `load_dataset("audiofolder", data_dir=root)` reads."""
    rng = np.random.default_rng(seed)
    for split, size in sizes.items():
        folder = root / split
        folder.mkdir(parents=True)
        with (folder / "metadata.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["file_name", "transcription", "label"])
            for i in range(size):
                label = LABELS[i % len(LABELS)]
                sf.write(folder / f"{i:03d}.wav", _stereo_clip(rng, LABELS.index(label)), 22_050)
                writer.writerow([f"{i:03d}.wav", PHRASES[label], label])
    return root


@pytest.fixture(scope="module")
def audiofolder(tmp_path_factory) -> Path:
    return _write_audiofolder(tmp_path_factory.mktemp("own") / "commands", {"train": 18, "test": 9})


# --- the pieces ----------------------------------------------------------------------------------------------------


def test_string_labels_become_sorted_names_and_indices():
    splits = DatasetDict(
        train=Dataset.from_dict({"label": ["b", "a", "c", "a"]}),
        test=Dataset.from_dict({"label": ["c", "a"]}),
    )
    labelled, task_type, names = prepare_labels(splits, "label")
    assert task_type == "classification" and names == ["a", "b", "c"]
    assert labelled["train"]["labels"] == [1, 0, 2, 0] and labelled["test"]["labels"] == [2, 0]


def test_integer_labels_are_named_by_value_and_floats_regress():
    ints = DatasetDict(train=Dataset.from_dict({"y": [10, 2, 2, 10, 7]}))
    labelled, task_type, names = prepare_labels(ints, "y")
    assert (task_type, names) == ("classification", ["2", "7", "10"])
    assert labelled["train"]["labels"] == [2, 0, 0, 2, 1]
    floats = DatasetDict(train=Dataset.from_dict({"y": [0.5, -1.25]}))
    labelled, task_type, names = prepare_labels(floats, "y")
    assert (task_type, names) == ("regression", None) and labelled["train"]["labels"] == [0.5, -1.25]


def test_class_label_names_are_kept_in_their_order():
    features = Features({"mood": ClassLabel(names=["sad", "happy"])})
    splits = DatasetDict(train=Dataset.from_dict({"mood": [1, 1, 0]}, features=features))
    labelled, _, names = prepare_labels(splits, "mood")
    assert names == ["sad", "happy"] and labelled["train"]["labels"] == [1, 1, 0]


def test_infer_task_type_refuses_what_it_cannot_tell():
    assert infer_task_type(Value("bool"), "x") == "classification"
    with pytest.raises(ValueError, match="pass --task_type"):
        infer_task_type(Features({"x": [Value("int32")]})["x"], "x")


def test_label_errors_name_what_exists():
    splits = DatasetDict(
        train=Dataset.from_dict({"label": ["a", "b"], "text": ["x", "y"]}),
        test=Dataset.from_dict({"label": ["a", "zebra"], "text": ["x", "y"]}),
    )
    with pytest.raises(
        ValueError, match=r"'intent' is not a column of split 'train', which has \['label', 'text'\]"
    ):
        prepare_labels(splits, "intent")
    with pytest.raises(
        ValueError, match=r"split 'test' has label\(s\) \['zebra'\].*2 label\(s\): \['a', 'b'\]"
    ):
        prepare_labels(splits, "label")
    unlabelled = DatasetDict(train=Dataset.from_dict({"label": ["a", None, "b", None]}))
    with pytest.raises(
        ValueError, match=r"2 row\(s\) of split 'train' have no label in 'label' \(rows \[1, 3\]\)"
    ):
        prepare_labels(unlabelled, "label")
    features = Features({"label": ClassLabel(names=["a", "b"])})
    minus_one = DatasetDict(train=Dataset.from_dict({"label": [0, -1]}, features=features))
    with pytest.raises(ValueError, match=r"rows \[1\]"):
        prepare_labels(minus_one, "label")
    with pytest.raises(ValueError, match="evaluate with a model trained on them"):
        prepare_labels(DatasetDict(test=splits["test"]), "label", label_names=["a", "b"])


def test_speaker_classes_are_the_training_speakers():
    """Speaker verification classifies the training speakers; validation rows of other speakers are left out of that
    classifier's evaluation (verification is scored on the trial split), and the trial split keeps no labels."""
    splits = DatasetDict(
        train=Dataset.from_dict({"spk": ["b", "a", "b"]}),
        validation=Dataset.from_dict({"spk": ["a", "zed", "b"]}),
        trials=Dataset.from_dict({"spk": ["x", "y"]}),
    )
    labelled, task_type, names = prepare_labels(
        splits, "spk", "speaker_verification", unlabelled_splits=("trials",)
    )
    assert (task_type, names) == ("speaker_verification", ["a", "b"])
    assert labelled["validation"]["spk"] == ["a", "b"] and labelled["validation"]["labels"] == [0, 1]
    assert "labels" not in labelled["trials"].column_names


def test_resolve_task_shorthands_and_errors():
    assert resolve_task(None, None, None).label_column == "directed"
    intent = resolve_task("intent", None, None)
    assert (intent.label_column, intent.drop_label, intent.task_type) == ("intent", -1, "classification")
    with pytest.raises(ValueError, match="--label_column_name label"):
        resolve_task("label", None, None)
    with pytest.raises(ValueError, match="pass one of them"):
        resolve_task("intent", "label", None)
    with pytest.raises(ValueError, match="--task_type must be one of"):
        resolve_task(None, "label", "ranking")


def test_parse_data_files():
    assert parse_data_files(["train=a.csv", "test=b.csv", "c.csv"]) == {
        "train": ["a.csv", "c.csv"],
        "test": ["b.csv"],
    }
    assert parse_data_files(None) is None


def test_missing_splits_are_seeded_stratified_and_disjoint():
    labels = [0] * 60 + [1] * 30 + [2] * 10
    data = DatasetDict(train=Dataset.from_dict({"labels": labels, "row": list(range(100))}))
    args = DatasetArguments(validation_split_percentage=20, test_split_percentage=10)
    made = add_missing_splits(data, args, ["validation", "test"], seed=3, stratify_column="labels")
    rows = {name: set(made[name]["row"]) for name in ("train", "validation", "test")}
    assert {name: len(r) for name, r in rows.items()} == {"train": 70, "validation": 20, "test": 10}
    assert set().union(*rows.values()) == set(range(100))
    assert not (rows["train"] & rows["test"]) and not (rows["validation"] & rows["test"])
    # stratified: each split keeps the 6:3:1 class shares exactly at these sizes
    assert sorted(made["test"]["labels"]) == [0] * 6 + [1] * 3 + [2]
    assert sorted(made["validation"]["labels"]) == [0] * 12 + [1] * 6 + [2] * 2
    again = add_missing_splits(data, args, ["validation", "test"], seed=3, stratify_column="labels")
    assert again["test"]["row"] == made["test"]["row"]
    other = add_missing_splits(data, args, ["validation", "test"], seed=4, stratify_column="labels")
    assert other["test"]["row"] != made["test"]["row"]
    # the test rows do not depend on whether a validation split is made too
    test_only = add_missing_splits(data, args, ["test"], seed=3, stratify_column="labels")
    assert test_only["test"]["row"] == made["test"]["row"]


def test_audiofolder_is_decoded_at_the_model_rate_in_mono(audiofolder):
    from audiolang.data.asr import audio_to_array

    args = DatasetArguments(dataset_name="audiofolder", data_dir=str(audiofolder))
    data = cast_audio_column(load_raw_splits(args), "audio", 16_000)
    decoded, rate = audio_to_array(data["train"][0]["audio"])
    expected, _ = librosa.load(audiofolder / "train" / "000.wav", sr=16_000, mono=True)
    assert rate == 16_000 and decoded.ndim == 1
    assert abs(len(decoded) - len(expected)) <= 2
    n = min(len(decoded), len(expected))
    assert np.corrcoef(decoded[:n], expected[:n])[0, 1] > 0.99


# --- the scripts, with the column flags alone ----------------------------------------------------------------------


def _finetune(model: Path, out: Path, *data: str) -> dict:
    return script_module("run_finetune").main(
        [
            "--model_name_or_path", str(model),
            *data,
            "--output_dir", str(out),
            "--num_train_epochs", "2",
            *TRAINING,
        ]
    )  # fmt: skip


def test_audiofolder_finetune_evaluate_predict(audiofolder, dsclap_checkpoint, tmp_path):
    data = [
        "--dataset_name", "audiofolder",
        "--data_dir", str(audiofolder),
        "--text_column_name", "transcription",
        "--label_column_name", "label",
    ]  # fmt: skip
    results = _finetune(dsclap_checkpoint, tmp_path / "ft", *data)
    # no validation split: 10% of train (stratified: 3 classes x 6 rows -> 2 rows), the test split as given
    assert results["task"] == "classification" and results["test_size"] == 9
    assert results["train_size"] == 16
    assert results["best_epoch"] in (1.0, 2.0) and "best_eval_accuracy" in results
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "ft")
    assert model.config.id2label == dict(enumerate(LABELS))

    metrics = script_module("run_evaluate").main(
        ["--model_name_or_path", str(tmp_path / "ft"), *data, "--output_dir", str(tmp_path / "ev"), *TRAINING]
    )
    assert metrics["test_accuracy"] == pytest.approx(results["test_accuracy"])

    predictions = tmp_path / "pred.jsonl"
    script_module("run_predict").main(
        [
            "--model_name_or_path", str(tmp_path / "ft"),
            "--dataset_name", "audiofolder",
            "--data_dir", str(audiofolder),
            "--text_column_name", "transcription",
            "--output_file", str(predictions),
        ]
    )  # fmt: skip
    records = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert len(records) == 9 and {r["label"] for r in records} <= set(LABELS)
    assert set(records[0]["scores"]) == set(LABELS)
    # the pipeline reads the same clips and transcripts as the evaluation: the same accuracy
    truth = [LABELS[i % 3] for i in range(9)]
    accuracy = np.mean([r["label"] == t for r, t in zip(records, truth, strict=True)])
    assert accuracy == pytest.approx(metrics["test_accuracy"])


def test_csv_of_audio_paths_with_its_own_column_names(dsclap_checkpoint, tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "clips").mkdir()
    for split, size in (("train", 12), ("dev", 6), ("eval", 6)):
        with (tmp_path / f"{split}.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["wav", "words", "target"])
            for i in range(size):
                label = LABELS[i % 3]
                name = f"clips/{split}-{i}.wav"
                sf.write(tmp_path / name, _stereo_clip(rng, i % 3, rate=44_100), 44_100)
                writer.writerow([name, PHRASES[label], label])
    results = _finetune(
        dsclap_checkpoint,
        tmp_path / "ft",
        "--data_files", f"train={tmp_path / 'train.csv'}", f"dev={tmp_path / 'dev.csv'}",
        f"eval={tmp_path / 'eval.csv'}",
        "--validation_split_name", "dev",
        "--test_split_name", "eval",
        "--audio_column_name", "wav",
        "--text_column_name", "words",
        "--label_column_name", "target",
        "--extra_test_split_names", "dev",
    )  # fmt: skip
    assert (results["train_size"], results["test_size"], results["dev_size"]) == (12, 6, 6)
    config = AutoModelForSequenceClassification.from_pretrained(tmp_path / "ft").config
    assert config.id2label == dict(enumerate(LABELS))
    # the extra split's score is the saved model's on that split, as run_evaluate.py computes it
    metrics = script_module("run_evaluate").main(
        [
            "--model_name_or_path", str(tmp_path / "ft"),
            "--data_files", f"train={tmp_path / 'train.csv'}", f"dev={tmp_path / 'dev.csv'}",
            "--audio_column_name", "wav",
            "--text_column_name", "words",
            "--label_column_name", "target",
            "--split", "dev",
            "--output_dir", str(tmp_path / "ev"),
            *TRAINING,
        ]
    )  # fmt: skip
    assert metrics["dev_accuracy"] == pytest.approx(results["dev_accuracy"])


def test_one_split_dataset_gets_seeded_validation_and_test_splits(dsclap_checkpoint, tmp_path):
    rng = np.random.default_rng(2)
    rows = {"audio": [], "sentence": [], "score": []}
    for i in range(30):
        label = LABELS[i % 3]
        path = tmp_path / f"{i}.wav"
        sf.write(path, _stereo_clip(rng, i % 3), 22_050)
        rows["audio"].append(str(path))
        rows["sentence"].append(PHRASES[label])
        rows["score"].append(float(i % 3))
    Dataset.from_dict(rows).save_to_disk(str(tmp_path / "data"))
    results = _finetune(
        dsclap_checkpoint,
        tmp_path / "ft",
        "--dataset_path", str(tmp_path / "data"),
        "--text_column_name", "sentence",
        "--label_column_name", "score",
        "--validation_split_percentage", "20",
        "--test_split_percentage", "20",
    )  # fmt: skip
    # floats regress; 20% + 20% of 30 rows leave 18 to train on
    assert results["task"] == "regression" and results["metric_for_best_model"] == "mae"
    assert (results["train_size"], results["test_size"]) == (18, 6)
    assert "test_mae" in results and "test_pearson" in results
    config = AutoModelForSequenceClassification.from_pretrained(tmp_path / "ft").config
    assert config.num_labels == 1 and config.id2label == {0: "score"}


def test_unknown_task_says_how_to_name_a_label_column(dsclap_checkpoint, tmp_path):
    with pytest.raises(ValueError, match="pass --label_column_name label"):
        _finetune(dsclap_checkpoint, tmp_path / "ft", "--task", "label")


def test_app_search_indexes_an_audiofolder(audiofolder):
    app = script_module("run_app")
    clips = app.search_clips(
        app.AppArguments(
            model=["unused"],
            search_dataset=str(audiofolder),
            search_split="test",
            search_size=3,
            search_text_column="transcription",
        )
    )
    assert [clip.transcript for clip in clips] == [PHRASES[label] for label in LABELS]
