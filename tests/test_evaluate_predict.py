"""Fine-tuning records the recogniser of the corpus' transcripts in the saved folder; `run_evaluate.py` gives the task
metrics of the model's own forward pass; `run_predict.py` writes the pipeline's predictions, each row exactly once
across shards, for a dataset split or a folder of audio files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from datasets import load_from_disk
from helpers import script_module
from transformers import AutoModelForSequenceClassification, AutoProcessor, EvalPrediction, pipeline

from audiolang.data.asr import PocketSphinxASR, audio_to_array, build_pocketsphinx_lm
from audiolang.data.corpus import MARKER
from audiolang.metrics import make_compute_metrics
from audiolang.pipelines import ASR_CONFIG_NAME, ASR_FOLDER, AudioTextClassificationPipeline, load_saved_asr
from audiolang.training import check_model_labels

TRAINING = [
    "--report_to", "none",
    "--save_strategy", "no",
    "--per_device_train_batch_size", "8",
    "--per_device_eval_batch_size", "4",
    "--dataloader_num_workers", "0",
    "--disable_tqdm", "true",
    "--use_cpu", "true",
]  # fmt: skip


@pytest.fixture(scope="module")
def corpus(audio_text_dataset, tmp_path_factory) -> Path:
    """The conftest dataset as an audiolang corpus whose `asr_text` pocketsphinx made with a domain language model
    (what `build_corpus` records: the `asr` spec in its info, the model in `asr_lm/`); its test split is speech
    (espeak-ng saying each row's text), so that the recogniser hears words."""
    from datasets import Audio

    from audiolang.data.synthesis import Voice, check_engines, synthesize, wav_bytes

    try:
        check_engines({"espeak-ng"})
    except RuntimeError as error:
        pytest.skip(str(error))
    data = load_from_disk(str(audio_text_dataset))
    voice = Voice("espeak-en-us+f1", "espeak-ng", "en-us+f1", "f")
    speech = [synthesize(voice, text) for text in data["test"]["text"]]
    data["test"] = (
        data["test"]
        .remove_columns(["audio", "duration"])
        .add_column("audio", [{"bytes": wav_bytes(clip), "path": None} for clip in speech], feature=Audio())
        .add_column("duration", [len(clip) / 16_000 for clip in speech])
    )
    folder = tmp_path_factory.mktemp("asr_corpus") / "corpus"
    data.save_to_disk(str(folder))
    build_pocketsphinx_lm(data["pretrain"]["text"], folder / "asr_lm")
    (folder / MARKER).write_text(json.dumps({"config": {"asr": "pocketsphinx"}}))
    return folder


@pytest.fixture(scope="module")
def finetuned(corpus, dsclap_checkpoint, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("finetuned") / "directed"
    script_module("run_finetune").main(
        [
            "--model_name_or_path", str(dsclap_checkpoint),
            "--task", "directed",
            "--dataset_path", str(corpus),
            "--output_dir", str(out),
            "--max_steps", "2",
            "--seed", "0",
            *TRAINING,
        ]
    )  # fmt: skip
    return out


def test_finetuning_records_the_recogniser_of_the_training_transcripts(
    finetuned, corpus, dsclap_checkpoint, tmp_path
):
    record = json.loads((finetuned / ASR_FOLDER / ASR_CONFIG_NAME).read_text())
    assert record == {
        "spec": "pocketsphinx",
        "kwargs": {"lm_path": "domain.arpa", "dict_path": "domain.dict"},
    }
    for name in ("domain.arpa", "domain.dict"):
        assert (finetuned / ASR_FOLDER / name).read_bytes() == (corpus / "asr_lm" / name).read_bytes()
    asr = load_saved_asr(finetuned)
    assert isinstance(asr, PocketSphinxASR) and asr.lm_path == finetuned / ASR_FOLDER / "domain.arpa"
    assert (
        "audio-text-classification" in json.loads((finetuned / "config.json").read_text())["custom_pipelines"]
    )
    assert (finetuned / "audio_text_classification.py").is_file()

    # Manual transcripts: no recogniser made them, none is recorded.
    manual = tmp_path / "manual"
    script_module("run_finetune").main(
        [
            "--model_name_or_path", str(dsclap_checkpoint),
            "--task", "directed",
            "--text_source", "manual",
            "--dataset_path", str(corpus),
            "--output_dir", str(manual),
            "--max_steps", "1",
            *TRAINING,
        ]
    )  # fmt: skip
    assert not (manual / ASR_FOLDER).exists() and load_saved_asr(manual) is None


def _logits(folder: Path, rows, text_column: str) -> np.ndarray:
    """The model's own forward on the processor's output, one row at a time."""
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    processor = AutoProcessor.from_pretrained(folder)
    logits = []
    for row in rows:
        audio, rate = audio_to_array(row["audio"])
        text = row[text_column] or processor.tokenizer.unk_token
        inputs = processor(
            audio=[audio], text=[text], sampling_rate=rate, truncate_audio=True, return_tensors="pt"
        )
        with torch.no_grad():
            logits.append(model(**inputs).logits[0].numpy())
    return np.stack(logits)


@pytest.mark.parametrize("split", ["test", "validation"])
def test_run_evaluate_gives_the_task_metrics_of_the_models_forward(finetuned, corpus, tmp_path, split):
    out = tmp_path / "eval"
    metrics = script_module("run_evaluate").main(
        [
            "--model_name_or_path", str(finetuned),
            "--task", "directed",
            "--dataset_path", str(corpus),
            "--split", split,
            "--output_dir", str(out),
            *TRAINING,
        ]
    )  # fmt: skip
    saved = json.loads((out / f"{split}_results.json").read_text())
    assert saved == pytest.approx(metrics)
    rows = load_from_disk(str(corpus))[split]
    expected = make_compute_metrics("directed")(
        EvalPrediction(predictions=_logits(finetuned, rows, "asr_text"), label_ids=np.array(rows["directed"]))
    )
    assert {f"{split}_{k}": v for k, v in expected.items()} == pytest.approx(
        {key: saved[key] for key in (f"{split}_{k}" for k in expected)}, abs=1e-6
    )
    assert saved[f"{split}_samples"] == len(rows)
    assert {p.name for p in out.glob("*.png")} == {f"{split}_confusion_matrix.png", f"{split}_det_roc.png"}


def test_run_evaluate_refuses_a_model_of_another_task_and_a_used_output_dir(finetuned, corpus, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="is not empty"):
        script_module("run_evaluate").main(
            [
                "--model_name_or_path",
                str(finetuned),
                "--dataset_path",
                str(corpus),
                "--output_dir",
                str(tmp_path),
            ]
        )
    config = AutoModelForSequenceClassification.from_pretrained(finetuned).config
    check_model_labels(config, ["non_directed", "directed"], "directed")
    with pytest.raises(ValueError, match="not the classes of --task directed"):
        check_model_labels(config, ["directed", "non_directed"], "directed")
    with pytest.raises(ValueError, match="--task valence is regression, but the model has 2 outputs"):
        check_model_labels(config, None, "valence")


def _pipeline_records(folder: Path, inputs: list, batch_size: int = 1) -> list[dict]:
    classifier = pipeline(
        "audio-text-classification",
        model=str(folder),
        pipeline_class=AudioTextClassificationPipeline,
        device="cpu",
    )
    labels = [classifier.model.config.id2label[i] for i in range(classifier.model.config.num_labels)]
    records = []
    for result in classifier(inputs, top_k=None, batch_size=batch_size):
        scores = {item["label"]: item["score"] for item in result}
        records.append(
            {
                "label": result[0]["label"],
                "score": result[0]["score"],
                "scores": {label: scores[label] for label in labels},
                "transcript": result[0]["transcript"],
            }
        )
    return records


def test_run_predict_shards_cover_every_row_once_with_the_pipelines_predictions(finetuned, corpus, tmp_path):
    predict = script_module("run_predict")
    output = tmp_path / "predictions.jsonl"
    common = ["--model_name_or_path", str(finetuned), "--dataset_path", str(corpus), "--split", "test"]
    common += ["--output_file", str(output), "--num_shards", "3", "--batch_size", "2", "--device", "cpu"]
    for shard in (2, 1):
        assert predict.main([*common, "--shard_index", str(shard)]) is None
    assert not output.exists()  # shard 0 is missing: nothing merged yet
    assert predict.main([*common, "--shard_index", "0"]) == output
    assert not (tmp_path / "predictions.jsonl.shards").exists()
    records = [json.loads(line) for line in output.read_text().splitlines()]

    rows = load_from_disk(str(corpus))["test"]
    assert [record.pop("id") for record in records] == list(range(len(rows)))
    clips = [
        dict(zip(("raw", "sampling_rate"), audio_to_array(value), strict=True)) for value in rows["audio"]
    ]
    expected = _pipeline_records(finetuned, clips)
    assert [r["label"] for r in records] == [r["label"] for r in expected]
    assert [r["transcript"] for r in records] == [r["transcript"] for r in expected]
    for record, reference in zip(records, expected, strict=True):
        assert record["scores"] == pytest.approx(reference["scores"], abs=1e-5)
    # The transcripts are those of the corpus' own recogniser.
    asr = PocketSphinxASR(
        lm_path=corpus / "asr_lm" / "domain.arpa", dict_path=corpus / "asr_lm" / "domain.dict"
    )
    assert [r["transcript"] for r in records] == asr.transcribe([clip["raw"] for clip in clips], 16_000)
    assert sum(bool(r["transcript"]) for r in records) >= len(records) // 2  # it heard words

    with pytest.raises(ValueError, match="exists"):
        predict.main([*common, "--shard_index", "0"])


def test_run_predict_on_a_folder_of_audio_files_to_csv(finetuned, dsclap_waveforms, tmp_path):
    audio_dir = tmp_path / "clips"
    (audio_dir / "sub").mkdir(parents=True)
    clips = dsclap_waveforms(6_000, 7_000, 8_000, seed=4)
    paths = [audio_dir / "b.wav", audio_dir / "a.flac", audio_dir / "sub" / "c.wav"]
    for path, clip in zip(paths, clips, strict=True):
        sf.write(path, clip, 16_000, subtype="FLOAT" if path.suffix == ".wav" else "PCM_24")
    (audio_dir / "notes.txt").write_text("not audio")
    output = tmp_path / "predictions.csv"
    script_module("run_predict").main(
        [
            "--model_name_or_path",
            str(finetuned),
            "--audio_dir",
            str(audio_dir),
            "--output_file",
            str(output),
            "--device",
            "cpu",
        ]  # fmt: skip
    )
    with open(output, newline="") as f:
        rows = list(csv.DictReader(f))
    ordered = sorted(str(path) for path in paths)
    assert [row["id"] for row in rows] == ordered
    expected = _pipeline_records(finetuned, ordered, batch_size=2)
    for row, reference in zip(rows, expected, strict=True):
        assert row["label"] == reference["label"] and row["transcript"] == reference["transcript"]
        assert {
            k[len("score_") :]: float(v) for k, v in row.items() if k.startswith("score_")
        } == pytest.approx(reference["scores"], abs=1e-5)
