"""The recipe search and the baselines sweep on a tiny dataset: the search reads the validation split only and
chooses the cheapest setting within the seed noise of the best mean validation score; the baselines sweep's summaries are the mean and standard
deviation of its own runs, and the TF-IDF row scores the same test rows as the models."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import _common  # noqa: E402
import finetune_baselines  # noqa: E402
import finetune_recipe  # noqa: E402


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    """Benchmark results go to a temporary folder, not benchmarks/results."""
    monkeypatch.setattr(_common, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(finetune_recipe, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(finetune_baselines, "RESULTS", tmp_path / "results")
    return tmp_path / "results"


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_recipe_search_chooses_the_best_mean_validation_score(
    dsclap_checkpoint, audio_text_dataset, tmp_path, results_dir
):
    finetune_recipe.main(
        [
            "--pretrained", str(dsclap_checkpoint),
            "--corpus_dir", str(audio_text_dataset),
            "--tasks", "directed",
            "--seeds", "0", "1",
            "--text_encoder_learning_rates", "1e-5", "1e-3",
            "--num_train_epochs", "1",
            "--batch_size", "8",
            "--no-reference",
            "--output_dir", str(tmp_path / "runs"),
        ]
    )  # fmt: skip
    lines = _lines(results_dir / "finetune_recipe.jsonl")
    runs = [line for line in lines if line["kind"] == "run"]
    summaries = [line for line in lines if line["kind"] == "summary"]
    assert len(runs) == 4 and len(summaries) == 2
    for summary in summaries:
        values = [r["value"] for r in runs if r["setting"] == summary["setting"]]
        assert summary["mean"] == pytest.approx(statistics.fmean(values))
    chosen = [s for s in summaries if s["chosen"]]
    assert len(chosen) == 1 and chosen[0]["setting"] == finetune_recipe.choose_setting(summaries)[0]
    # the test split was never read: no test metric anywhere in the runs' results
    for results in (tmp_path / "runs").rglob("finetune_results.json"):
        assert not [
            key for key in json.loads(results.read_text()) if key.startswith("test_") and key != "test_size"
        ]
    assert "**yes**" in (results_dir / "finetune_recipe.md").read_text()


def _summary(task, setting, mean, std, epochs):
    return {"task": task, "setting": setting, "mean": mean, "std": std, "best_epoch_mean": epochs}


def test_recipe_choice_is_the_cheapest_setting_within_the_seed_noise_of_the_best():
    """Means over the two tasks: slow 0.90 (seed std 0.01 on both tasks), fast 0.895 in half the epochs, cheapest
    0.85: fast is within the best's noise and cheaper, so it is chosen; cheapest is outside the noise."""
    rows = [
        _summary("intent", "slow", 0.88, 0.01, 10.0),
        _summary("directed", "slow", 0.92, 0.01, 4.0),
        _summary("intent", "fast", 0.87, 0.03, 5.0),
        _summary("directed", "fast", 0.92, 0.002, 2.0),
        _summary("intent", "cheapest", 0.80, 0.0, 1.0),
        _summary("directed", "cheapest", 0.90, 0.0, 1.0),
    ]
    chosen, average = finetune_recipe.choose_setting(rows)
    assert chosen == "fast"
    assert average == pytest.approx({"slow": 0.90, "fast": 0.895, "cheapest": 0.85})
    # Without a tie (no seed spread), the best mean wins however slow it is.
    exact = [{**row, "std": 0.0} for row in rows]
    assert finetune_recipe.choose_setting(exact)[0] == "slow"


@pytest.mark.slow  # 8 fine-tuning and evaluation processes: about 3 min on 2 quiet cores
def test_baselines_sweep_summaries_and_tfidf_rows(
    dsclap_checkpoint, audio_text_dataset, tmp_path, results_dir
):
    finetune_baselines.main(
        [
            "--pretrained", str(dsclap_checkpoint),
            "--initial", str(dsclap_checkpoint),
            "--corpus_dir", str(audio_text_dataset),
            "--tasks", "directed",
            "--seeds", "0", "1",
            "--arms", "text tower alone", finetune_baselines.TFIDF,
            "--extra_test_splits", "validation",
            "--batch_size", "8",
            "--output_dir", str(tmp_path / "runs"),
        ]
    )  # fmt: skip
    lines = _lines(results_dir / "finetune_baselines.jsonl")
    runs = [line for line in lines if line["kind"] == "run"]
    # 2 arms x 2 seeds x 2 splits
    assert len(runs) == 8 and {r["split"] for r in runs} == {"test", "validation"}
    for summary in (line for line in lines if line["kind"] == "summary"):
        values = [r["accuracy"] for r in runs if (r["arm"], r["split"]) == (summary["arm"], summary["split"])]
        assert summary["accuracy"] == pytest.approx(statistics.fmean(values))
        assert summary["accuracy_std"] == pytest.approx(statistics.stdev(values))
    # the text-tower model's test score is the one its own run wrote
    run = next(r for r in runs if r["arm"] == "text tower alone" and r["split"] == "test" and r["seed"] == 0)
    own = json.loads(next((tmp_path / "runs").rglob("seed0/finetune_results.json")).read_text())
    assert run["accuracy"] == own["test_accuracy"]
    table = (results_dir / "finetune_baselines.md").read_text()
    assert "| text tower alone |" in table and finetune_baselines.TFIDF in table
