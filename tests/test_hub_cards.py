"""Hub-ready folders: widget examples saved in the folder, card metadata as the Hub parses it, what `push_to_hub`
would upload (up to the network boundary), and Space folders."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from datasets import Audio, ClassLabel, Dataset, Features, Value
from huggingface_hub import HfApi, ModelCard, SpaceCard
from huggingface_hub.utils import filter_repo_objects
from packaging.requirements import Requirement

import audiolang
from audiolang import DsclapForSequenceClassification, DsclapProcessor
from audiolang.hub import (
    AudioExample,
    Result,
    examples_from_dataset,
    push_to_hub,
    write_model_card,
    write_space,
)

RATE = 16_000
# (transcript, directed, seconds): row 1 repeats row 0's label, row 2 is longer than the 1 s limit, so the examples
# are rows 0 and 3 (one per label, short ones only).
ROWS = [
    ("navigate home", 1, 0.5),
    ("play some music", 1, 0.4),
    ("call mom", 0, 1.5),
    ("open the window", 0, 0.6),
]
STATISTICS = {
    "splits": {
        "test": {
            "utterances": 40,
            "speakers": 3,
            "hours": 0.05,
            "directed_share": 0.55,
            "engines": ["espeak-ng", "flite"],
            "asr_wer": 0.4321,
            "asr_cer": 0.3,
        },
        "train": {
            "utterances": 80,
            "speakers": 5,
            "hours": 0.1,
            "directed_share": 0.6,
            "engines": ["festival"],
            "asr_wer": 0.25,
            "asr_cer": 0.2,
        },
    }
}


def _tone(seconds: float, frequency: float) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * frequency * np.arange(int(seconds * RATE)) / RATE)).astype(np.float32)


@pytest.fixture
def labelled_split() -> Dataset:
    features = Features(
        {
            "audio": Audio(sampling_rate=RATE),
            "asr_text": Value("string"),
            "directed": ClassLabel(names=["non_directed", "directed"]),
            "duration": Value("float32"),
        }
    )
    return Dataset.from_dict(
        {
            "audio": [
                {"array": _tone(s, 200 + 100 * i), "sampling_rate": RATE} for i, (_, _, s) in enumerate(ROWS)
            ],
            "asr_text": [text for text, _, _ in ROWS],
            "directed": [label for _, label, _ in ROWS],
            "duration": [s for _, _, s in ROWS],
        },
        features=features,
    )


@pytest.fixture
def classifier_folder(tmp_path, dsclap_config_factory, dsclap_tokenizer) -> Path:
    folder = tmp_path / "directed-tiny"
    config = dsclap_config_factory(
        num_labels=2, id2label={0: "non_directed", 1: "directed"}, label2id={"non_directed": 0, "directed": 1}
    )
    DsclapForSequenceClassification(config).save_pretrained(folder)
    DsclapProcessor.from_config(config, dsclap_tokenizer).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("with_duration_column", [True, False])
def test_examples_are_short_clips_one_per_label_in_row_order(labelled_split, with_duration_column):
    split = labelled_split if with_duration_column else labelled_split.remove_columns("duration")
    examples = examples_from_dataset(split, num_examples=3, label_column="directed", max_seconds=1.0)
    assert [(e.transcript, e.label) for e in examples] == [
        ("navigate home", "directed"),
        ("open the window", "non_directed"),
    ]
    np.testing.assert_allclose(
        examples[0].array, _tone(0.5, 200), atol=1e-4
    )  # the 16-bit WAV the dataset stores
    assert [e.sampling_rate for e in examples] == [RATE, RATE]


def test_examples_show_a_missing_class_label_as_none(labelled_split):
    split = labelled_split.map(
        lambda row: {"directed": -1 if row["asr_text"] == "navigate home" else row["directed"]}
    )
    examples = examples_from_dataset(split, num_examples=2, label_column="directed", max_seconds=1.0)
    assert [(e.transcript, e.label) for e in examples] == [
        ("navigate home", None),
        ("play some music", "directed"),
    ]
    assert examples[0].title == '"navigate home"'


def test_examples_reject_unknown_columns(labelled_split):
    with pytest.raises(ValueError, match="column 'intent' is not in the dataset"):
        examples_from_dataset(labelled_split, label_column="intent")


def test_classifier_card_metadata_widget_and_measured_limits(classifier_folder, labelled_split, monkeypatch):
    examples = examples_from_dataset(labelled_split, num_examples=2, label_column="directed", max_seconds=1.0)
    results = [Result("directed", "accuracy", 0.75), Result("directed", "frr", 0.125)]
    write_model_card(
        classifier_folder,
        family="dsclap",
        results=results,
        examples=examples,
        corpus_statistics=STATISTICS,
        datasets=["audiolang embedded in-car corpus"],
    )
    card = ModelCard.load(classifier_folder / "README.md")
    data = card.data.to_dict()
    assert (data["library_name"], data["pipeline_tag"]) == ("transformers", "audio-classification")
    assert {"audiolang", "dsclap"} <= set(data["tags"])
    assert data["widget"] == [
        {"src": "examples/00.flac", "example_title": '"navigate home" (directed)'},
        {"src": "examples/01.flac", "example_title": '"open the window" (non_directed)'},
    ]
    index = {(r.task_name, r.metric_type, r.dataset_split): r.metric_value for r in card.data.eval_results}
    assert index == {("directed", "accuracy", "test"): 0.75, ("directed", "frr", "test"): 0.125}
    # The clips are in the folder, readable as datasets' audiofolder, with their transcripts and labels.
    read, rate = sf.read(classifier_folder / "examples" / "01.flac", dtype="float32")
    assert rate == RATE
    np.testing.assert_allclose(read, _tone(0.6, 500), atol=1e-4)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from datasets import load_dataset

    folder = load_dataset("audiofolder", data_dir=str(classifier_folder / "examples"), split="train")
    assert folder["transcript"] == ["navigate home", "open the window"]
    assert folder["label"] == ["directed", "non_directed"]
    # Intended use names the classes; the limits are those of the split the results were measured on.
    assert "one of 2 classes (non_directed, directed)" in card.text
    assert "`test` split: 40 clips, 3 speakers (espeak-ng, flite), 3.0 min, 55% device-directed" in card.text
    assert "word error rate of 43.2%" in card.text and "`train` split" not in card.text
    assert 'pipeline("audio-text-classification", model="path/to/this/folder"' in card.text


def test_rewriting_a_card_replaces_its_examples(classifier_folder):
    clip = AudioExample(_tone(0.3, 300), RATE, "turn on the radio", "directed")
    write_model_card(classifier_folder, family="dsclap", examples=[clip, clip])
    write_model_card(classifier_folder, family="dsclap", examples=[clip])
    assert sorted(p.name for p in (classifier_folder / "examples").iterdir()) == ["00.flac", "metadata.jsonl"]
    write_model_card(classifier_folder, family="dsclap")
    assert not list((classifier_folder / "examples").iterdir())
    assert getattr(ModelCard.load(classifier_folder / "README.md").data, "widget", None) is None


def test_measured_limits_cover_every_split_without_results(classifier_folder):
    card = write_model_card(classifier_folder, family="dsclap", corpus_statistics=STATISTICS)
    assert "`test` split" in card.text and "`train` split: 80 clips" in card.text


def _list_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def fake_hub(monkeypatch) -> list[tuple]:
    """Replaces `HfApi`'s network calls: records the repo creation and the files an upload would send, chosen with
    huggingface_hub's own pattern filter from the patterns `upload_folder` receives."""
    calls: list[tuple] = []

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", repo_id, kwargs))

    def upload_folder(self, *, folder_path, repo_id, commit_message, **kwargs):
        files = filter_repo_objects(
            _list_files(Path(folder_path)),
            allow_patterns=kwargs.pop("allow_patterns", None),
            ignore_patterns=kwargs.pop("ignore_patterns", None),
        )
        calls.append(("upload_folder", repo_id, commit_message, kwargs["repo_type"], sorted(files)))
        return type("CommitInfo", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/abc"})()

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return calls


def test_push_to_hub_uploads_the_model_files_and_points_the_card_at_the_repo(
    classifier_folder, labelled_split, fake_hub
):
    examples = examples_from_dataset(labelled_split, num_examples=2, label_column="directed", max_seconds=1.0)
    write_model_card(classifier_folder, family="dsclap", examples=examples)
    model_files = _list_files(classifier_folder)
    # What a Trainer output folder holds beside the model: neither goes up.
    (classifier_folder / "checkpoint-5").mkdir()
    (classifier_folder / "checkpoint-5" / "model.safetensors").write_bytes(b"x")
    (classifier_folder / "training_args.bin").write_bytes(b"pickle")

    url = push_to_hub(
        classifier_folder, "org/directed-tiny", private=True, commit_message="Add directed model"
    )

    assert url == "https://huggingface.co/org/directed-tiny/commit/abc"
    create, upload = fake_hub
    assert create == (
        "create_repo",
        "org/directed-tiny",
        {"private": True, "exist_ok": True, "repo_type": "model"},
    )
    assert upload[:4] == ("upload_folder", "org/directed-tiny", "Add directed model", "model")
    assert upload[4] == model_files
    assert {"config.json", "model.safetensors", "README.md", "examples/00.flac", "examples/01.flac"} <= set(
        upload[4]
    )
    card = ModelCard.load(classifier_folder / "README.md")
    assert [entry["src"] for entry in card.data.widget] == [
        "https://huggingface.co/org/directed-tiny/resolve/main/examples/00.flac",
        "https://huggingface.co/org/directed-tiny/resolve/main/examples/01.flac",
    ]
    assert 'model="org/directed-tiny"' in card.text and "path/to/this/folder" not in card.text


def test_push_to_hub_refuses_a_folder_without_its_files(classifier_folder, tmp_path, fake_hub):
    with pytest.raises(ValueError, match="has no README.md: save the model and write its card first"):
        push_to_hub(classifier_folder, "org/x")
    with pytest.raises(ValueError, match="has no app.py: write it with write_space first"):
        push_to_hub(tmp_path, "org/x", repo_type="space")
    with pytest.raises(ValueError, match="repo_type must be one of"):
        push_to_hub(classifier_folder, "org/x", repo_type="dataset")
    assert fake_hub == []


def test_space_folder_card_requirements_and_app(classifier_folder, labelled_split, tmp_path, fake_hub):
    examples = examples_from_dataset(labelled_split, num_examples=2, label_column="directed", max_seconds=1.0)
    write_model_card(classifier_folder, family="dsclap", examples=examples)
    (classifier_folder / "checkpoint-5").mkdir()
    space = tmp_path / "space"

    write_space(space, [classifier_folder, "org/dsclap"], title="In-car SLU")

    card = SpaceCard.load(space / "README.md")
    assert (card.data.sdk, card.data.app_file, card.data.title) == ("gradio", "app.py", "In-car SLU")
    assert card.data.sdk_version == metadata.version("gradio")
    assert card.data.models == ["org/dsclap"]  # a Hub id; the folder is copied into the Space
    pins = {
        Requirement(line).name: str(Requirement(line).specifier)
        for line in (space / "requirements.txt").read_text().split()
    }
    declared = [Requirement(line) for line in metadata.requires("audiolang")]
    assert set(pins) == {r.name for r in declared if r.marker is None} | {
        "gradio"
    }  # no extras (dev, gpu, ...)
    # Pinned to what runs here, as the package index names it (torch's local "+cpu" label left out).
    assert pins["transformers"] == f"=={metadata.version('transformers')}"
    assert pins["torch"] == f"=={metadata.version('torch').split('+')[0]}"
    assert not (space / "models" / "directed-tiny" / "checkpoint-5").exists()
    assert (space / "models" / "directed-tiny" / "model.safetensors").is_file()
    rows = [json.loads(line) for line in (space / "examples" / "metadata.jsonl").read_text().splitlines()]
    assert [row["file_name"] for row in rows] == ["directed-tiny-00.flac", "directed-tiny-01.flac"]
    assert all((space / "examples" / row["file_name"]).is_file() for row in rows)
    # The Space carries the package (not on the package index) and runs its app.
    package = Path(audiolang.__file__).parent
    assert (space / "audiolang" / "app.py").read_text() == (package / "app.py").read_text()
    assert (space / "audiolang" / "pipelines" / "__init__.py").is_file()
    assert not list(space.glob("audiolang/**/__pycache__"))
    app = (space / "app.py").read_text()
    compile(app, "app.py", "exec")
    assert "AudioLanguageDemo(['models/directed-tiny', 'org/dsclap'], search_clips=clips)" in app

    push_to_hub(space, "org/in-car-slu", repo_type="space")
    create, upload = fake_hub
    assert create == (
        "create_repo",
        "org/in-car-slu",
        {"private": False, "exist_ok": True, "repo_type": "space", "space_sdk": "gradio"},
    )
    assert upload[4] == _list_files(space)


def test_space_needs_a_model(tmp_path):
    with pytest.raises(ValueError, match="models is empty"):
        write_space(tmp_path, [])
