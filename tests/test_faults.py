"""Fault injection: the bad-input and fault cases of issue 20, each reproduced as a new user met it and pinned to the
clear error or correct behaviour it now gets (the case number is in each test's docstring).

Everything runs in this process on tiny data (the conftest dataset, a tiny classifier saved here, a corpus folder
written without synthesis), so that the suite stays fast; the run scripts' own end-to-end runs are in
test_resume.py and test_run_guards.py."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from datasets import DatasetDict
from helpers import script_module
from transformers import HfArgumentParser, TrainingArguments, pipeline

from audiolang import DsclapForSequenceClassification, DsclapProcessor
from audiolang.data import CorpusConfig, build_corpus, load_corpus
from audiolang.data import corpus as corpus_module
from audiolang.pipelines import TASK, AudioTextClassificationPipeline
from audiolang.training import (
    CheckedTrainingArguments,
    DatasetArguments,
    FinetuneTrainingArguments,
    ensure_text_column,
    lifecycle,
    load_raw_splits,
    resume_checkpoint,
    run_record,
)

SR = 16_000


# --- a run owns its output folder (cases 2, 3, 6) ------------------------------------------------------------------


def _args(**overrides) -> TrainingArguments:
    return TrainingArguments(output_dir="unused", report_to="none", **overrides)


def _finished_run(folder: Path, record: dict, steps: tuple[int, ...]) -> None:
    """What a finished run leaves: its record and complete checkpoints."""
    lifecycle.write_run_record(folder, record)
    for step in steps:
        (folder / f"checkpoint-{step}").mkdir(parents=True)
        (folder / f"checkpoint-{step}" / "trainer_state.json").write_text(json.dumps({"global_step": step}))


@pytest.fixture(autouse=True)
def _forget_locks():
    """Each test owns its folders afresh (in a script, a process locks a folder once)."""
    yield
    lifecycle._LOCKED.clear()


def test_overwrite_removes_the_old_runs_checkpoints(tmp_path):
    """Case 2: `--overwrite_output_dir` over a finished 8-step run (seed 3) left checkpoint-6 and -8 beside the new
    run, and the next re-run resumed the old run's checkpoint-8."""
    old, new = run_record(_args(seed=3, max_steps=8)), run_record(_args(seed=5, max_steps=4))
    _finished_run(tmp_path, old, (6, 8))
    assert resume_checkpoint(tmp_path, overwrite_output_dir=True, record=new) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == [lifecycle.LOCK_FILE, lifecycle.RUN_RECORD]
    assert json.loads((tmp_path / lifecycle.RUN_RECORD).read_text())["--seed"] == 5
    # The new run's checkpoint is resumed by the same command; the old command is refused, not resumed.
    (tmp_path / "checkpoint-4").mkdir()
    (tmp_path / "checkpoint-4" / "trainer_state.json").write_text("{}")
    assert resume_checkpoint(tmp_path, record=new) == str(tmp_path / "checkpoint-4")
    with pytest.raises(
        ValueError, match=r"differs in --seed \(5 there, 3 now\), --max_steps \(4 there, 8 now\)"
    ):
        resume_checkpoint(tmp_path, record=old)


def test_a_checkpoint_of_another_task_is_refused_naming_the_arguments(tmp_path):
    """Case 3: another --task into a folder with checkpoints failed with a raw `size mismatch for
    classifier.weight`."""
    _finished_run(tmp_path, run_record(_args(seed=3), task="intent", dataset="a1"), (2,))
    with pytest.raises(ValueError) as error:
        resume_checkpoint(tmp_path, record=run_record(_args(seed=3), task="directed", dataset="b2"))
    assert str(error.value) == (
        f"{str(tmp_path / 'checkpoint-2')!r} is a checkpoint of another run: it differs in --task ('intent' there, "
        "'directed' now), --dataset ('a1' there, 'b2' now). Pass --overwrite_output_dir to remove its checkpoints "
        "and start afresh, choose another --output_dir, or re-run with the arguments it was made with to resume it."
    )
    # --resume_from_checkpoint is checked against the record of the run that made it, too.
    with pytest.raises(ValueError, match="differs in --task"):
        resume_checkpoint(
            tmp_path / "other", resume_from_checkpoint=str(tmp_path / "checkpoint-2"), record={"--task": "x"}
        )


def test_a_second_writer_is_refused_and_a_dead_ones_lock_taken_over(tmp_path, caplog):
    """Case 6: two fine-tuning runs on one --output_dir both exited 0, the first one's model lost."""
    writer = subprocess.Popen(["sleep", "60"])
    try:
        (tmp_path / lifecycle.LOCK_FILE).write_text(
            json.dumps({"pid": writer.pid, "host": socket.gethostname()})
        )
        with pytest.raises(ValueError, match=rf"is being written by another run \(process {writer.pid} on "):
            resume_checkpoint(tmp_path)
    finally:
        writer.kill()
        writer.wait()
    with caplog.at_level(logging.WARNING, logger=lifecycle.__name__):
        assert resume_checkpoint(tmp_path) is None
    assert f"its process {writer.pid} is no longer running" in caplog.text
    assert json.loads((tmp_path / lifecycle.LOCK_FILE).read_text())["pid"] == os.getpid()


def test_the_lock_and_an_untouched_folder_go_at_exit(tmp_path):
    folder = tmp_path / "new" / "out"
    resume_checkpoint(folder, record={"--seed": 1})
    assert sorted(p.name for p in folder.iterdir()) == [lifecycle.LOCK_FILE, lifecycle.RUN_RECORD]
    lifecycle._release_output_dirs()
    assert sorted(tmp_path.iterdir()) == []


# --- argument checks before any folder (case 13) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        (
            "--per_device_train_batch_size",
            "0",
            "--per_device_train_batch_size must be an integer >= 1 (the rows each",
        ),
        ("--per_device_eval_batch_size", "-2", "--per_device_eval_batch_size must be an integer >= 1"),
        ("--gradient_accumulation_steps", "0", "--gradient_accumulation_steps must be an integer >= 1"),
        ("--num_train_epochs", "0", "--num_train_epochs is 0.0 and --max_steps -1: nothing would be trained"),
    ],
)
def test_bad_counts_are_named_before_any_folder_exists(tmp_path, flag, value, message):
    """Case 13: `--per_device_train_batch_size 0` failed deep in torch, flag unnamed, an empty folder left."""
    for arguments in (CheckedTrainingArguments, FinetuneTrainingArguments):
        with pytest.raises(ValueError, match=re.escape(message)):
            HfArgumentParser(arguments).parse_args_into_dataclasses(
                ["--output_dir", str(tmp_path / "out"), flag, value]
            )
    assert not (tmp_path / "out").exists()


# --- data (cases 1, 9, 14, 15) -------------------------------------------------------------------------------------


def _write_corpus(folder: Path, split, config: CorpusConfig) -> None:
    """A corpus folder as a build leaves it (data, then the marker), from rows made without synthesis."""
    DatasetDict({"train": split(4, 0), "test": split(4, 1)}).save_to_disk(str(folder))
    corpus_module.write_marker(folder, config, {}, "test corpus")


def test_corpus_overwrite_deletes_only_what_its_build_wrote(tmp_path, audio_text_split, monkeypatch):
    """Case 1: `run_build_corpus.py --overwrite` deleted the user's own files of the corpus folder without a word."""
    corpus = tmp_path / "C"
    _write_corpus(corpus, audio_text_split, CorpusConfig.from_preset("tiny", seed=0))
    (corpus / "my_labels.csv").write_text("row,label\n")
    (corpus / "my_sub").mkdir()
    (corpus / "my_sub" / "notes.txt").write_text("mine")
    before = sorted(p.relative_to(corpus).as_posix() for p in corpus.rglob("*"))
    other = CorpusConfig.from_preset("tiny", seed=1)
    with pytest.raises(ValueError) as error:
        build_corpus(config=other, output_dir=corpus, overwrite=True, progress=False)
    assert str(error.value) == (
        f"output_dir {str(corpus)!r} holds files that its corpus build did not write (my_labels.csv, my_sub/): "
        "--overwrite replaces only what a build wrote. Move them out of the folder, or choose another folder."
    )
    assert sorted(p.relative_to(corpus).as_posix() for p in corpus.rglob("*")) == before

    # Without them, the corpus (and the caches `datasets` wrote beside it) is replaced.
    (corpus / "my_labels.csv").unlink()
    (corpus / "my_sub" / "notes.txt").unlink()
    (corpus / "my_sub").rmdir()
    load_corpus(corpus)["train"].map(lambda row: row)  # a cache file beside the split's data
    assert list((corpus / "train").glob("cache-*.arrow"))
    monkeypatch.setattr(corpus_module, "plan_corpus", lambda config: [])
    monkeypatch.setattr(corpus_module, "check_engines", lambda engines: None)
    monkeypatch.setattr(
        corpus_module, "_build_into", lambda tmp, config, *rest: _write_corpus(tmp, audio_text_split, config)
    )
    build_corpus(config=other, output_dir=corpus, overwrite=True, progress=False)
    marker = json.loads((corpus / corpus_module.MARKER).read_text())
    assert marker["fingerprint"] == other.fingerprint()
    assert sorted(p.relative_to(corpus).as_posix() for p in corpus.rglob("*") if p.is_file()) == sorted(
        [*marker["files"], corpus_module.MARKER]
    )


def test_a_damaged_corpus_hint_rebuilds_the_same_corpus(tmp_path, audio_text_split):
    """Case 9: the rebuild command suggested for a truncated corpus file dropped its --preset and --seed."""
    corpus = tmp_path / "C"
    _write_corpus(corpus, audio_text_split, CorpusConfig.from_preset("tiny", seed=4, asr="whisper-tiny.en"))
    arrow = next((corpus / "train").glob("*.arrow"))
    with open(arrow, "r+b") as f:
        f.truncate(arrow.stat().st_size // 2)
    with pytest.raises(ValueError) as error:
        load_corpus(corpus)
    assert str(error.value).endswith(
        f"rebuild it with `python run_scripts/run_build_corpus.py --output_dir {corpus} --preset tiny --seed 4 "
        "--asr whisper-tiny.en --overwrite`."
    )


def test_a_truncated_arrow_file_of_a_saved_dataset_is_named(tmp_path, audio_text_split):
    """Case 15: a truncated arrow file of a plain `save_to_disk` dataset gave a raw pyarrow OSError."""
    DatasetDict({"train": audio_text_split(4, 0)}).save_to_disk(str(tmp_path / "data"))
    arrow = next((tmp_path / "data" / "train").glob("*.arrow"))
    with open(arrow, "r+b") as f:
        f.truncate(arrow.stat().st_size // 2)
    with pytest.raises(ValueError) as error:
        load_raw_splits(DatasetArguments(dataset_path=str(tmp_path / "data")))
    message = str(error.value)
    assert message.startswith(
        f"the dataset at {str(tmp_path / 'data')!r} is damaged: {arrow} cannot be read ("
    )
    assert message.endswith(
        "Save it again from its source (`Dataset.save_to_disk`), or rebuild it the way it was made."
    )


def test_none_transcripts_are_named_by_row(audio_text_split):
    """Case 14: None in the text column of fine-tuning or evaluation: `'NoneType' object has no attribute 'strip'`."""
    split = audio_text_split(5, 0)
    split = split.map(
        lambda row, i: {"asr_text": None if i in (1, 3) else row["asr_text"]}, with_indices=True
    )
    with pytest.raises(ValueError) as error:
        ensure_text_column(DatasetDict({"test": split}), "asr_text", "audio", "pocketsphinx")
    assert str(error.value).startswith(
        "2 row(s) of split 'test' have no transcript (None) in 'asr_text' (rows [1, 3])"
    )


# --- prediction (cases 4, 5, 7, 8, 10, 11, 12) ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def classifiers(tmp_path_factory, dsclap_config_factory, dsclap_tokenizer) -> dict[str, Path]:
    """Two fine-tuned-looking tiny classifiers (trained heads with named classes): intent-like and directed-like."""
    folders = {}
    for seed, (name, labels) in enumerate(
        {"intent": ["music", "calls", "radio"], "directed": ["no", "yes"]}.items()
    ):
        torch.manual_seed(seed)
        config = dsclap_config_factory(
            id2label=dict(enumerate(labels)), label2id={x: i for i, x in enumerate(labels)}
        )
        folder = tmp_path_factory.mktemp(name)
        DsclapForSequenceClassification(config).save_pretrained(folder)
        DsclapProcessor.from_config(config, dsclap_tokenizer).save_pretrained(folder)
        folders[name] = folder
    return folders


def _predict(*args: str) -> Path | None:
    return script_module("run_predict").main([*map(str, args)])


def test_shards_of_another_model_are_not_merged(classifiers, audio_text_dataset, tmp_path):
    """Case 4: shard 0 made with one model, both shards then re-made with another (--overwrite_output_file) and
    merged: shard 0 was skipped as done, and the merged file mixed both models' labels."""
    out = tmp_path / "predictions.jsonl"
    common = [
        "--dataset_path",
        audio_text_dataset,
        "--text_column",
        "asr_text",
        "--num_shards",
        2,
        "--output_file",
        out,
    ]
    _predict("--model_name_or_path", classifiers["intent"], "--shard_index", 0, *common)
    with pytest.raises(ValueError, match=r"shard 0 of 2 in .* was made by another run \(it differs in "):
        _predict("--model_name_or_path", classifiers["directed"], "--shard_index", 0, *common)
    for shard in (0, 1):
        _predict(
            "--model_name_or_path",
            classifiers["directed"],
            "--shard_index",
            shard,
            "--overwrite_output_file",
            *common,
        )
    merged = _predict("--merge_only", *common)
    records = [json.loads(line) for line in merged.read_text().splitlines()]
    assert [r["id"] for r in records] == list(range(8))
    assert {r["label"] for r in records} <= {"no", "yes"}

    # A merge of shards of two models is refused.
    _predict(
        "--model_name_or_path", classifiers["intent"], "--shard_index", 0, "--overwrite_output_file", *common
    )
    _predict(
        "--model_name_or_path",
        classifiers["directed"],
        "--shard_index",
        1,
        "--overwrite_output_file",
        *common,
    )
    with pytest.raises(
        ValueError, match=r"1 shard\(s\) of .* were made by another run than shard 0 \(shard 1: "
    ):
        _predict("--merge_only", "--overwrite_output_file", *common)


def test_a_folder_without_a_trained_head_is_refused(dsclap_checkpoint, audio_text_dataset, tmp_path):
    """Case 5: a pre-trained folder predicted "LABEL_1 0.61" from a random classifier, and without --asr the error
    blamed the missing recogniser."""
    with pytest.raises(ValueError) as error:
        _predict(
            "--model_name_or_path",
            dsclap_checkpoint,
            "--dataset_path",
            audio_text_dataset,
            "--output_file",
            tmp_path / "p.jsonl",
        )
    message = str(error.value)
    assert message.startswith(
        f"{str(dsclap_checkpoint)!r} has no trained classification head (its weights lack classifier."
    )
    assert message.endswith("and predict with the fine-tuned folder.") and "fine-tune it first" in message
    assert not (tmp_path / "p.jsonl.shards").exists()


def _wav(folder: Path, name: str, seconds: float, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    samples = 0.3 * np.sin(np.arange(int(seconds * SR)) / 7) + 0.01 * rng.standard_normal(int(seconds * SR))
    sf.write(folder / name, samples.astype(np.float32), SR, subtype="PCM_16")
    return folder / name


@pytest.fixture
def audio_dir(tmp_path) -> Path:
    """good.wav, a truncated WAV (3.4 s declared, 0.62 s there), an m4a, a text file named .wav, an empty .flac and
    a notes.txt."""
    folder = tmp_path / "clips"
    folder.mkdir()
    good = _wav(folder, "good.wav", 3.4)
    (folder / "truncated.wav").write_bytes(good.read_bytes()[:20000])
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", good, folder / "phone.m4a"], check=True)
    (folder / "text.wav").write_text("not audio\n" * 50)
    (folder / "empty.flac").write_bytes(b"")
    (folder / "notes.txt").write_text("a note")
    return folder


def test_audio_dir_checks_every_file_first(classifiers, audio_dir, tmp_path, caplog):
    """Cases 8, 10, 11, 7: m4a files left out silently (4 rows for 5 files); a text file named .wav aborted the job
    with torchcodec's C++ source path; a zero-byte .flac said "This should never happen"; a truncated WAV gave a
    label from its first 0.6 s without a warning."""
    args = ["--model_name_or_path", classifiers["directed"], "--audio_dir", audio_dir]
    with pytest.raises(ValueError) as error, caplog.at_level(logging.WARNING):
        _predict(*args, "--output_file", tmp_path / "error.jsonl")
    assert str(error.value) == (
        "2 bad audio clip(s) in the data:\n"
        f"  split '--audio_dir' row 0 ({audio_dir / 'empty.flac'}): empty file (0 bytes)\n"
        f"  split '--audio_dir' row 3 ({audio_dir / 'text.wav'}): cannot be decoded (RuntimeError: Could not open "
        f"input file: {audio_dir / 'text.wav'} Invalid data found when processing input)\n"
        "Repair or remove them, or pass --bad_audio skip to go on without them."
    )
    assert (
        "1 file(s) left out, not audio by their extension" in caplog.text
        and str(audio_dir / "notes.txt") in caplog.text
    )
    assert (
        f"split '--audio_dir' row 4 ({audio_dir / 'truncated.wav'}): truncated: its header declares 3.40 s of audio "
        "but the file holds 0.62 s"
    ) in caplog.text


def test_the_pipeline_names_bad_files_and_warns_of_truncated_ones(classifiers, audio_dir, caplog):
    """Cases 7, 11, 12: the pipeline's truncated-file label without a warning, decoder errors without the file, and
    a folder reported as "does not exist"."""
    classifier = pipeline(
        TASK, model=str(classifiers["directed"]), pipeline_class=AudioTextClassificationPipeline
    )
    with pytest.raises(
        ValueError, match=rf"audio file '{audio_dir}' is a folder: pass the path of one audio file"
    ):
        classifier(str(audio_dir), transcript="call mom")
    for name, reason in (
        ("text.wav", r"cannot be decoded \(RuntimeError: Could not open input file: "),
        (
            "empty.flac",
            r"cannot be decoded \(ValueError: no audio stream found: not an audio file, or an empty one\)",
        ),
    ):
        with pytest.raises(ValueError, match=rf"audio file '{audio_dir / name}' {reason}"):
            classifier(str(audio_dir / name), transcript="call mom")
    with caplog.at_level(logging.WARNING):
        result = classifier(str(audio_dir / "truncated.wav"), transcript="call mom")
    assert result["label"] in ("no", "yes")
    assert (
        f"audio file '{audio_dir / 'truncated.wav'}' is truncated: its header declares 3.40 s of audio but the file "
        "holds 0.62 s: only that part is classified"
    ) in caplog.text
    assert classifier(str(audio_dir / "phone.m4a"), transcript="call mom")["label"] in ("no", "yes")
