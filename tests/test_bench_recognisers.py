"""benchmarks/bench_recognisers.py: raw audio -> label through the pipeline with each recogniser, on a tiny labelled
dataset; its accuracies are checked against the model's own forward on what the recognisers hear, computed here."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import AutoModelForSequenceClassification, AutoProcessor

from audiolang import DsclapForSequenceClassification, DsclapProcessor
from audiolang.pipelines import save_asr_config, save_custom_pipeline

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import bench_recognisers  # noqa: E402

LABELS = ("navigation", "music", "windows")
# The dataset's ClassLabel: another order than the model's id2label, and a name the model does not use, so that
# labels are compared by name.
CLASS_NAMES = ["windows", "calls", "navigation", "music"]
SENTENCES = {
    "test": [
        "navigate home",
        "play some music",
        "open the window",
        "call mom",
        "turn on the radio",
        "set reminder",
    ],
    "test_natural": ["close the window", "play music", "navigate to work", "turn up the volume"],
}


@pytest.fixture(scope="module")
def speech() -> dict[str, list[np.ndarray]]:
    """The sentences spoken by espeak-ng, as 16-bit WAV bytes decode (what the dataset stores)."""
    from audiolang.data.synthesis import Voice, check_engines, synthesize

    try:
        check_engines({"espeak-ng"})
    except RuntimeError as error:
        pytest.skip(str(error))
    voice = Voice("espeak-en-us+f2", "espeak-ng", "en-us+f2", "f")
    return {split: [_pcm16(synthesize(voice, text)) for text in texts] for split, texts in SENTENCES.items()}


def _wav(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, 16_000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _pcm16(samples: np.ndarray) -> np.ndarray:
    return sf.read(io.BytesIO(_wav(samples)), dtype="float32")[0]


@pytest.fixture(scope="module")
def classifier_folder(tmp_path_factory, dsclap_tokenizer, dsclap_config_factory) -> Path:
    """A tiny DSCLAP intent classifier (random weights) that records pocketsphinx with a domain language model as
    the recogniser of its training transcripts, as fine-tuning on the corpus does."""
    from audiolang.data.asr import build_pocketsphinx_lm

    root = tmp_path_factory.mktemp("bench_recognisers")
    config = dsclap_config_factory(
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={name: i for i, name in enumerate(LABELS)},
    )
    torch.manual_seed(0)
    folder = root / "classifier"
    DsclapForSequenceClassification(config).eval().save_pretrained(folder)
    DsclapProcessor.from_config(config, dsclap_tokenizer).save_pretrained(folder)
    save_custom_pipeline(folder)
    lm_path, dict_path = build_pocketsphinx_lm(
        [s for texts in SENTENCES.values() for s in texts], root / "lm"
    )
    save_asr_config(folder, "pocketsphinx", lm_path=str(lm_path), dict_path=str(dict_path))
    return folder


@pytest.fixture(scope="module")
def tiny_ctc_folder(tmp_path_factory) -> Path:
    """A random 2-layer wav2vec2 CTC model with a character vocabulary: a recogniser that `load_asr` builds from a
    local folder (a transformers ASR pipeline), in a fraction of a second per clip. Layer norms and an attention mask
    (as wav2vec2-large-lv60) make its transcripts independent of the batch a clip is padded in."""
    from transformers import Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC

    path = tmp_path_factory.mktemp("tiny_ctc")
    vocab = {
        "<pad>": 0,
        "<unk>": 1,
        "|": 2,
        **{c: i + 3 for i, c in enumerate("abcdefghijklmnopqrstuvwxyz'")},
    }
    (path / "vocab.json").write_text(json.dumps(vocab))
    Wav2Vec2CTCTokenizer(str(path / "vocab.json"), word_delimiter_token="|").save_pretrained(path)
    Wav2Vec2FeatureExtractor(sampling_rate=16_000, return_attention_mask=True).save_pretrained(path)
    config = Wav2Vec2Config(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(32, 32, 32),
        conv_stride=(5, 4, 4),
        conv_kernel=(10, 8, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        pad_token_id=0,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
    )
    torch.manual_seed(0)
    Wav2Vec2ForCTC(config).save_pretrained(path)
    return path


def _predictions(folder: Path, clips: list[np.ndarray], transcripts: list[str]) -> list[str]:
    """The model's own forward on its processor's output, one clip at a time; an empty transcript is read as the
    unknown token (what fine-tuning does)."""
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    processor = AutoProcessor.from_pretrained(folder)
    predicted = []
    for clip, text in zip(clips, transcripts, strict=True):
        inputs = processor(
            audio=[clip],
            text=[text or processor.tokenizer.unk_token],
            sampling_rate=16_000,
            return_tensors="pt",
        )
        with torch.no_grad():
            predicted.append(model.config.id2label[int(model(**inputs).logits[0].argmax())])
    return predicted


def test_accuracy_of_each_recogniser_and_of_the_given_transcripts(
    classifier_folder, speech, tiny_ctc_folder, tmp_path
):
    from datasets import Audio, ClassLabel, Dataset, DatasetDict, Features, Value

    from audiolang.data.asr import load_asr
    from audiolang.metrics.asr import word_error_rate
    from audiolang.pipelines import saved_asr_config

    ctc_spec = str(tiny_ctc_folder)
    spec, kwargs = saved_asr_config(classifier_folder)
    recognisers = {"pocketsphinx": load_asr(spec, **kwargs), ctc_spec: load_asr(ctc_spec)}
    features = Features(
        {
            "audio": Audio(sampling_rate=16_000),
            "asr_text": Value("string"),
            "text": Value("string"),
            "intent": ClassLabel(names=CLASS_NAMES),
        }
    )
    data, expected, correct = {}, {}, {}
    for split, clips in speech.items():
        heard = {name: asr.transcribe(clips, 16_000) for name, asr in recognisers.items()}
        manual = SENTENCES[split]
        asr_text = [" ".join(text.split()[:2]) for text in manual]  # an imperfect recogniser's transcripts
        predicted = {name: _predictions(classifier_folder, clips, texts) for name, texts in heard.items()}
        predicted["transcripts:asr_text"] = _predictions(classifier_folder, clips, asr_text)
        predicted["transcripts:text"] = _predictions(classifier_folder, clips, manual)
        # Labels: pocketsphinx's predictions for the first two rows, another label for the rest, and the last row
        # unlabelled (-1: dropped), so that the accuracies are neither 0 nor 1 by construction.
        right = predicted["pocketsphinx"]
        names = right[:2] + [LABELS[(LABELS.index(p) + 1) % len(LABELS)] for p in right[2:]]
        intents = [CLASS_NAMES.index(name) for name in names[:-1]] + [-1]
        data[split] = Dataset.from_dict(
            {"audio": [{"bytes": _wav(clip), "path": None} for clip in clips], "asr_text": asr_text, "text": manual,
             "intent": intents},
            features=features,
        )  # fmt: skip
        labelled = len(clips) - 1
        correct[split] = {
            name: [p == t for p, t in zip(preds[:labelled], names[:labelled], strict=True)]
            for name, preds in predicted.items()
        }
        expected[split] = {
            name: sum(p == t for p, t in zip(preds[:labelled], names[:labelled], strict=True)) / labelled
            for name, preds in predicted.items()
        }
        expected[split]["wer"] = {
            name: round(word_error_rate(manual[:labelled], texts[:labelled]), 4)
            for name, texts in heard.items()
        }
        assert expected[split]["pocketsphinx"] == pytest.approx(2 / labelled)
    DatasetDict(data).save_to_disk(str(tmp_path / "dataset"))

    output = tmp_path / "results.jsonl"
    output.write_text('{"earlier": "line"}\n')
    records = bench_recognisers.main(
        [
            "--model_name_or_path", str(classifier_folder),
            "--dataset_path", str(tmp_path / "dataset"),
            "--splits", "test", "test_natural",
            "--label_column_name", "intent",
            "--recognisers", "pocketsphinx", ctc_spec,
            "--batch_size", "2",
            "--output_file", str(output),
        ]
    )  # fmt: skip
    runs = ["pocketsphinx", ctc_spec, "transcripts:asr_text", "transcripts:text"]
    assert [(r["split"], r["recogniser"]) for r in records] == [(s, run) for s in SENTENCES for run in runs]
    for r in records:
        assert r["clips"] == len(SENTENCES[r["split"]]) - 1
        assert r["accuracy"] == pytest.approx(expected[r["split"]][r["recogniser"]], abs=1e-4), r
        assert r["correct"] == round(expected[r["split"]][r["recogniser"]] * r["clips"])
        assert r["clips_per_second"] > 0 and r["label_column"] == "intent"
        assert len(r["commit"]) == 40 and isinstance(r["dirty"], bool)
        if r["recogniser"].startswith("transcripts:"):
            assert "wer" not in r and "asr_kwargs_from" not in r
        else:
            assert r["wer"] == expected[r["split"]]["wer"][r["recogniser"]]
    assert records[0]["asr_kwargs_from"] == "model folder (training recogniser)"
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert lines == [{"earlier": "line"}, *records]  # appended

    # A seeded sample of labelled rows; a split that is not there is named with the ones that are.
    sample = bench_recognisers.main(
        [
            "--model_name_or_path", str(classifier_folder),
            "--dataset_path", str(tmp_path / "dataset"),
            "--recognisers",
            "--max_samples", "3",
            "--output_file", str(output),
        ]
    )  # fmt: skip
    assert [(r["split"], r["recogniser"], r["clips"]) for r in sample] == [
        ("test", "transcripts:asr_text", 3),
        ("test", "transcripts:text", 3),
    ]
    rows = np.random.default_rng(0).permutation(len(SENTENCES["test"]) - 1)[
        :3
    ]  # the documented seeded sample
    for r in sample:
        assert r["correct"] == sum(correct["test"][r["recogniser"]][i] for i in rows)
    with pytest.raises(ValueError, match=r"split\(s\) \['nope'\] not in .*\['test', 'test_natural'\]"):
        bench_recognisers.main(
            [
                "--model_name_or_path", str(classifier_folder),
                "--dataset_path", str(tmp_path / "dataset"),
                "--splits", "test", "nope",
                "--output_file", str(output),
            ]
        )  # fmt: skip
