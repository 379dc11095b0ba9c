"""Model cards and pushing to the Hub (up to the network boundary)."""

from __future__ import annotations

import pytest
from huggingface_hub import ModelCard

from audiolang import DsclapConfig, DsclapForSequenceClassification, DsclapModel, hub
from audiolang.hub import Result, push_to_hub, write_model_card


@pytest.fixture
def saved_model(tmp_path):
    folder = tmp_path / "dsclap-tiny"
    DsclapModel(DsclapConfig.from_preset("tiny")).save_pretrained(folder)
    return folder


def test_card_parses_with_metadata_and_results(saved_model, tmp_path):
    write_model_card(
        saved_model,
        family="dsclap",
        base_models=["sentence-transformers/all-MiniLM-L6-v2", str(tmp_path)],
        datasets=["audiolang embedded in-car corpus"],
        results=[Result("intent", "accuracy", 0.875), Result("directed", "frr", 0.05, split="validation")],
        pretraining={"epochs": 3},
    )
    card = ModelCard.load(saved_model / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "transformers"
    assert data["pipeline_tag"] == "zero-shot-audio-classification"
    assert "dsclap" in data["tags"]
    assert data["base_model"] == ["sentence-transformers/all-MiniLM-L6-v2"]  # local folders are not hub ids
    results = {(r.task_name, r.metric_type, r.dataset_split): r.metric_value for r in card.data.eval_results}
    assert results == {("intent", "accuracy", "test"): 0.875, ("directed", "frr", "validation"): 0.05}
    assert "| intent | test | accuracy | 0.8750 |" in card.text
    assert "epochs: 3" in card.text and "wav2vec2" in card.text


def test_classifier_card_has_classification_pipeline_tag(tmp_path):
    folder = tmp_path / "clf"
    DsclapForSequenceClassification(DsclapConfig.from_preset("tiny", num_labels=2)).save_pretrained(folder)
    card = write_model_card(folder, family="dsclap")
    assert card.data.pipeline_tag == "audio-classification"
    assert "No downstream evaluation" in card.text


def test_unknown_family_template(saved_model):
    with pytest.raises(ValueError, match="no model-card template"):
        write_model_card(saved_model, family="nope")


def test_push_to_hub_uploads_the_folder(saved_model, monkeypatch):
    calls = []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("init", token))

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs["private"], kwargs["exist_ok"]))

        def upload_folder(self, folder_path, repo_id, **kwargs):
            calls.append(("upload_folder", folder_path, repo_id))
            return type("Info", (), {"commit_url": f"https://hub/{repo_id}/commit/1"})()

    monkeypatch.setattr(hub, "HfApi", FakeApi)
    with pytest.raises(ValueError, match="README.md"):
        push_to_hub(saved_model, "org/dsclap-tiny")  # no card yet
    write_model_card(saved_model, family="dsclap")
    url = push_to_hub(saved_model, "org/dsclap-tiny", private=True, token="t")
    assert url == "https://hub/org/dsclap-tiny/commit/1"
    assert calls[-3:] == [
        ("init", "t"),
        ("create_repo", "org/dsclap-tiny", True, True),
        ("upload_folder", str(saved_model), "org/dsclap-tiny"),
    ]


def test_each_task_keeps_its_own_metrics_in_the_model_index(saved_model):
    results = [
        Result("directed", "accuracy", 0.8),
        Result("directed", "frr", 0.1),
        Result("intent", "accuracy", 0.4),
    ]
    card = write_model_card(saved_model, family="dsclap", results=results)
    index = ModelCard.load(saved_model / "README.md").data.to_dict()["model-index"][0]["results"]
    by_task = {entry["task"]["name"]: {m["type"]: m["value"] for m in entry["metrics"]} for entry in index}
    assert by_task == {"directed": {"accuracy": 0.8, "frr": 0.1}, "intent": {"accuracy": 0.4}}
    assert len(card.data.eval_results) == 3
