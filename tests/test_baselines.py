"""`tfidf_baseline`: the text-only TF-IDF + linear-model baseline, on small hand-made datasets with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from audiolang import TfidfBaselineOutput, tfidf_baseline
from audiolang.baselines import TFIDF_C, TFIDF_CS

# Words that carry no label: every class and every target value draws from them alike.
FILLER = ["please", "now", "could", "you", "the", "car", "maybe", "quickly", "today", "then", "also", "just",
          "here", "there", "again"]  # fmt: skip
# The one word that decides each sentence's label.
KEYWORDS = {"music": "media", "heater": "climate", "dial": "phone"}


def keyword_sentences(n: int, seed: int) -> tuple[list[str], list[str]]:
    """`n` sentences of 2-6 filler words with one keyword at a random place, labelled by the keyword."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for row in range(n):
        keyword = list(KEYWORDS)[row % len(KEYWORDS)]
        words = list(rng.choice(FILLER, size=int(rng.integers(2, 7))))
        words.insert(int(rng.integers(0, len(words) + 1)), keyword)
        texts.append(" ".join(words))
        labels.append(KEYWORDS[keyword])
    return texts, labels


def counted_sentences(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """`n` sentences of 5 filler words with 0-3 repetitions of "beep" somewhere inside; the target is the count."""
    rng = np.random.default_rng(seed)
    texts, targets = [], []
    for _ in range(n):
        count = int(rng.integers(0, 4))
        words = list(rng.choice(FILLER, size=5))
        place = int(rng.integers(0, len(words) + 1))
        texts.append(" ".join(words[:place] + ["beep"] * count + words[place:]))
        targets.append(float(count))
    return texts, np.array(targets)


def test_a_deciding_word_is_learned_exactly() -> None:
    train_texts, train_labels = keyword_sentences(60, seed=0)
    eval_texts, eval_labels = keyword_sentences(30, seed=1)
    assert not set(eval_texts) & set(train_texts)  # held-out sentences
    out = tfidf_baseline(train_texts, train_labels, eval_texts)
    assert isinstance(out, TfidfBaselineOutput)
    assert out.predictions.tolist() == eval_labels
    assert out.classes.tolist() == ["climate", "media", "phone"]
    assert out.probabilities.shape == (30, 3)
    np.testing.assert_allclose(out.probabilities.sum(axis=1), 1.0)
    assert out.classes[out.probabilities.argmax(axis=1)].tolist() == out.predictions.tolist()
    assert out.hyperparameters == {"C": TFIDF_C}


def test_random_labels_give_chance_accuracy() -> None:
    # Labels drawn independently of the text: no model can beat chance (0.5 on balanced binary labels) on new rows;
    # with 400 evaluation rows the accuracy's standard deviation around it is 0.025.
    rng = np.random.default_rng(0)
    vocabulary = [f"word{index}" for index in range(50)]
    texts = [" ".join(rng.choice(vocabulary, size=6)) for _ in range(800)]
    labels = rng.integers(0, 2, size=800)
    out = tfidf_baseline(texts[:400], labels[:400], texts[400:])
    accuracy = float(np.mean(out.predictions == labels[400:]))
    assert abs(accuracy - 0.5) < 0.1, accuracy


def test_regression_on_a_word_count() -> None:
    train_texts, train_targets = counted_sentences(400, seed=0)
    eval_texts, eval_targets = counted_sentences(100, seed=1)
    out = tfidf_baseline(train_texts, train_targets, eval_texts, task_type="regression")
    assert out.probabilities is None and out.classes is None and set(out.hyperparameters) == {"alpha"}
    residual = np.sum((out.predictions - eval_targets) ** 2)
    total = np.sum((eval_targets - eval_targets.mean()) ** 2)
    assert 1 - residual / total > 0.9


@pytest.mark.parametrize("c", [TFIDF_C, None])
def test_same_seed_same_output(c: float | None) -> None:
    train_texts, train_labels = keyword_sentences(30, seed=0)
    eval_texts, _ = keyword_sentences(12, seed=1)
    first = tfidf_baseline(train_texts, train_labels, eval_texts, seed=3, C=c)
    second = tfidf_baseline(train_texts, train_labels, eval_texts, seed=3, C=c)
    assert first.predictions.tolist() == second.predictions.tolist()
    np.testing.assert_array_equal(first.probabilities, second.probabilities)
    assert first.hyperparameters == second.hyperparameters


def test_cross_validated_c_comes_from_the_grid_unless_a_class_is_too_rare_to_split() -> None:
    train_texts, train_labels = keyword_sentences(30, seed=0)
    searched = tfidf_baseline(train_texts, train_labels, ["dial now"], C=None)
    assert searched.hyperparameters["C"] in TFIDF_CS
    assert searched.predictions.tolist() == ["phone"]
    rare = tfidf_baseline([*train_texts, "radio"], [*train_labels, "radio"], ["radio"], C=None)
    assert rare.hyperparameters == {"C": TFIDF_C}


def test_missing_and_empty_texts_count_as_empty_strings() -> None:
    train_texts, train_labels = keyword_sentences(30, seed=0)
    out = tfidf_baseline([*train_texts, None, float("nan"), ""], [*train_labels, "media", "phone", "climate"],
                         [None, "", "heater please", float("nan")])  # fmt: skip
    assert len(out.predictions) == 4 and out.probabilities.shape == (4, 3)
    assert out.predictions[2] == "climate"
    # The empty rows all read as the same (empty) text.
    np.testing.assert_array_equal(out.probabilities[0], out.probabilities[1])
    np.testing.assert_array_equal(out.probabilities[0], out.probabilities[3])


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"`train_texts` has 3 rows but `train_labels` has 2"):
        tfidf_baseline(["a b", "c d", "e f"], [0, 1], ["a b"])
    with pytest.raises(ValueError, match=r"`task_type` must be one of \('classification', 'regression'\)"):
        tfidf_baseline(["a b", "c d"], [0, 1], ["a b"], task_type="ranking")
    with pytest.raises(ValueError, match="no label .* row 1"):
        tfidf_baseline(["a b", "c d", "e f"], [0, None, 1], ["a b"])
    with pytest.raises(ValueError, match="Every training text is empty"):
        tfidf_baseline([None, "", " "], [0, 1, 0], ["a b"])
    with pytest.raises(ValueError, match="at least 2 classes"):
        tfidf_baseline(["play music", "open the window"], ["media", "media"], ["a b"])


def test_tfidf_task_metrics_scores_with_the_task_metrics():
    """Directedness decided by a word: accuracy 1 and EER 0 on held-out rows, from log-probabilities in label order;
    a class the training rows lack gets its own (never chosen) column."""
    from datasets import Dataset

    from audiolang.baselines import tfidf_task_metrics

    words = ["hey car open", "hey car close", "we talked about", "she said that"]
    train = Dataset.from_dict(
        {
            "t": [words[i % 4] + f" thing {i}" for i in range(40)],
            "labels": [int(i % 4 < 2) for i in range(40)],
        }
    )
    test = Dataset.from_dict(
        {"t": ["hey car play", "we said nothing", "hey car stop", "she talked"], "labels": [1, 0, 1, 0]}
    )
    metrics = tfidf_task_metrics(train, test, "t", "directed", num_labels=2)
    assert metrics["test_accuracy"] == 1.0 and metrics["test_eer"] == 0.0
    three = tfidf_task_metrics(train, test, "t", "classification", num_labels=3)
    assert three["test_accuracy"] == 1.0


def test_tfidf_split_metrics_reads_the_rows_and_labels_of_the_run(tmp_path, audio_text_split):
    """The baseline a results table prints beside a fine-tuned run: trained on the run's training rows and scored on
    each named split with the run's metrics — equal to `tfidf_task_metrics` on the same rows taken by hand, with the
    labels a user's string column gets."""
    from datasets import DatasetDict

    from audiolang.baselines import tfidf_split_metrics, tfidf_task_metrics
    from audiolang.training import DatasetArguments

    splits = {}
    for seed, (name, rows) in enumerate({"train": 24, "test": 8, "other": 8}.items()):
        split = audio_text_split(rows, seed)
        splits[name] = split.add_column("label", ["on" if d else "off" for d in split["directed"]])
    DatasetDict(splits).save_to_disk(str(tmp_path / "data"))

    scores = tfidf_split_metrics(
        DatasetArguments(dataset_path=str(tmp_path / "data")),
        ("test", "other"),
        label_column_name="label",
        seed=3,
    )

    # Independent expectation: the string labels sorted into ids ("off" 0, "on" 1), then the same baseline.
    def by_hand(split):
        return split.map(lambda row: {"labels": int(row["label"] == "on")}).remove_columns("audio")

    for name in ("test", "other"):
        expected = tfidf_task_metrics(
            by_hand(splits["train"]), by_hand(splits[name]), "asr_text", "classification", 2, 3
        )
        assert scores[name] == expected
    assert set(scores) == {"test", "other"}
