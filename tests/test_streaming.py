"""Streaming pre-training: parquet shards written from a built split, length bucketing in a buffer, the split across
processes, per-clip checks and on-the-fly transcription, and training on the stream against the map-style path."""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from datasets import Audio, load_dataset
from matplotlib.image import imread
from transformers import AutoModel, AutoProcessor, TrainingArguments

from audiolang import DsclapModel
from audiolang.data import ASRBackend
from audiolang.training import (
    ROW_INDEX_COLUMN,
    AudioTextTrainer,
    DataCollatorForAudioText,
    add_length_column,
    add_row_index,
    find_bad_audio,
    min_audio_samples,
)
from audiolang.training.streaming import (
    StreamingAudioTextTrainer,
    length_bucketed,
    prepare_pretraining_stream,
    stream_head,
    write_parquet_shards,
)

SCRIPTS = Path(__file__).resolve().parent.parent / "run_scripts"


def wav(samples: np.ndarray) -> dict:
    buffer = io.BytesIO()
    sf.write(buffer, samples, 16_000, format="WAV", subtype="FLOAT")
    return {"bytes": buffer.getvalue(), "path": None}


@pytest.fixture(scope="module")
def pretrain_split(audio_text_split):
    """16 rows of the corpus' schema, 0.3-0.6 s each."""
    return audio_text_split(16, 0)


@pytest.fixture(scope="module")
def shards(tmp_path_factory, pretrain_split, audio_text_split) -> Path:
    """The split as 2 parquet shards (rows 0-7 and 8-15), with an 8-row validation split."""
    folder = tmp_path_factory.mktemp("shards")
    write_parquet_shards(
        {"pretrain": pretrain_split, "validation": audio_text_split(8, 1)}, folder, num_shards=2
    )
    return folder


def row_indices(examples) -> list[int]:
    return [example[ROW_INDEX_COLUMN] for example in examples]


def test_length_bucketed_yields_every_example_once_in_length_sorted_chunks():
    lengths = np.random.default_rng(0).integers(100, 1000, size=29)
    examples = [{"id": i, "length": int(n)} for i, n in enumerate(lengths)]
    out = list(length_bucketed(examples, batch_size=4, buffer_batches=3, rng=np.random.default_rng(0)))
    assert sorted(e["id"] for e in out) == list(range(29))
    # Buffers of 12 stream examples (the last holds 5); each is cut, sorted, into chunks of 4, whose order is shuffled.
    for start in (0, 12, 24):
        buffer = sorted(examples[start : start + 12], key=lambda e: e["length"])
        chunks = [buffer[i : i + 4] for i in range(0, len(buffer), 4)]
        batches = [out[i : i + 4] for i in range(start, start + len(buffer), 4)]
        assert sorted(map(str, batches)) == sorted(map(str, chunks))
    # The incomplete chunk comes last, so that every batch the DataLoader cuts before it is a whole chunk.
    assert out[-1] == max(examples[24:], key=lambda e: e["length"])
    unshuffled = list(length_bucketed(examples, batch_size=4, buffer_batches=3))
    assert unshuffled[:12] == sorted(examples[:12], key=lambda e: e["length"])
    chunk_orders = {
        tuple(e["id"] for e in length_bucketed(examples, 4, 3, rng=np.random.default_rng(seed)))
        for seed in range(5)
    }
    assert len(chunk_orders) > 1
    # One batch per buffer: each batch holds the examples the stream grouped, sorted.
    single = list(length_bucketed(examples, batch_size=4, buffer_batches=1))
    assert [sorted(e["id"] for e in single[i : i + 4]) for i in range(0, 28, 4)] == [
        list(range(i, i + 4)) for i in range(0, 28, 4)
    ]
    with pytest.raises(ValueError, match="`batch_size` and `buffer_batches` must be >= 1"):
        next(length_bucketed(examples, batch_size=0))


def test_parquet_shards_stream_back_the_split(shards, pretrain_split):
    assert sorted(p.name for p in (shards / "data").iterdir()) == [
        "pretrain-00000-of-00002.parquet",
        "pretrain-00001-of-00002.parquet",
        "validation-00000-of-00002.parquet",
        "validation-00001-of-00002.parquet",
    ]
    stream = load_dataset(str(shards), split="pretrain", streaming=True)
    assert stream.num_shards == 2 and stream.features["audio"] == Audio(sampling_rate=16_000)
    rows = list(stream.decode(False))
    stored = pretrain_split.cast_column("audio", Audio(decode=False))
    assert [row["audio"]["bytes"] for row in rows] == [a["bytes"] for a in stored["audio"]]
    assert [row["asr_text"] for row in rows] == pretrain_split["asr_text"]
    assert row_indices(rows) == list(range(16))
    head = stream_head(load_dataset(str(shards), split="validation", streaming=True), 3)
    assert head.num_rows == 3 and head.features["audio"] == Audio(sampling_rate=16_000)


def test_parquet_shards_refuse_splits_of_different_columns(pretrain_split, tmp_path):
    # One folder is one schema to datasets: a split without asr_text would stream it back as all None.
    with pytest.raises(ValueError, match="different features.*separate folders"):
        write_parquet_shards(
            {"a": pretrain_split, "b": pretrain_split.remove_columns(["asr_text"])}, tmp_path
        )


@pytest.mark.parametrize("num_shards", [2, 3])
def test_two_processes_read_every_row_exactly_once(shards, pretrain_split, tmp_path, num_shards):
    """split_dataset_by_node for ranks 0 and 1 of 2 (no process group needed): whole shards per process when their
    number is even, one example in two otherwise."""
    folder = shards
    if num_shards != 2:
        folder = tmp_path / "odd"
        write_parquet_shards(pretrain_split, folder, num_shards=num_shards, split="pretrain")
    stream = load_dataset(str(folder), split="pretrain", streaming=True)
    parts = [
        row_indices(
            prepare_pretraining_stream(stream, batch_size=4, rank=rank, world_size=2, buffer_batches=1)
        )
        for rank in (0, 1)
    ]
    assert sorted(parts[0] + parts[1]) == list(range(16))
    if num_shards == 2:
        assert set(parts[0]) == set(range(8)) and set(parts[1]) == set(range(8, 16))
    alone = row_indices(prepare_pretraining_stream(stream, batch_size=4, buffer_batches=1))
    assert sorted(alone) == list(range(16))


def test_bad_clips_raise_or_are_skipped_as_they_stream(audio_text_split, tmp_path, caplog):
    nan = np.full(6000, 0.1, np.float32)
    nan[7] = np.nan
    split = audio_text_split(
        8, 2, replace={2: {"bytes": b"not a wav file", "path": "broken.wav"}, 5: wav(nan)}
    )
    write_parquet_shards(split, tmp_path, num_shards=2)
    stream = load_dataset(str(tmp_path), split="train", streaming=True)
    # The same validator as the up-front check: the same rows, the same words.
    upfront = find_bad_audio(add_row_index(split), "train")
    assert [clip.row for clip in upfront] == [2, 5]
    with pytest.raises(ValueError) as error:
        list(prepare_pretraining_stream(stream, batch_size=2))
    assert str(upfront[0]) in str(error.value) and "--bad_audio skip" in str(error.value)
    with caplog.at_level(logging.WARNING, logger="audiolang.training.streaming"):
        kept = row_indices(prepare_pretraining_stream(stream, batch_size=2, bad_audio="skip"))
    assert sorted(kept) == [0, 1, 3, 4, 6, 7]
    assert [str(clip) in caplog.text for clip in upfront] == [True, True]


class LengthASR(ASRBackend):
    """Transcribes each clip as its number of samples, and nothing for one length; counts its batches."""

    name = "length"

    def __init__(self, silent_length: int) -> None:
        self.silent_length = silent_length
        self.batches: list[int] = []

    def transcribe(self, audio, sampling_rate):
        self.batches.append(len(audio))
        return ["" if len(x) == self.silent_length else f"{len(x)} samples" for x in audio]


def test_missing_transcripts_are_made_in_batches_as_the_clips_stream(pretrain_split, tmp_path, monkeypatch):
    write_parquet_shards(pretrain_split.remove_columns(["asr_text"]), tmp_path, num_shards=2)
    lengths = [round(d * 16_000) for d in pretrain_split["duration"]]
    asr = LengthASR(silent_length=lengths[6])
    monkeypatch.setattr("audiolang.training.streaming.load_asr", lambda spec: asr)
    stream = load_dataset(str(tmp_path), split="train", streaming=True)
    rows = list(prepare_pretraining_stream(stream, batch_size=4, asr_batch_size=5))
    # Each clip transcribed once, five at a time as the 16 stream by; the row with the empty transcript dropped.
    assert asr.batches == [5, 5, 5, 1]
    assert sorted(row_indices(rows)) == [i for i in range(16) if i != 6]
    assert all(row["asr_text"] == f"{row['length']} samples" for row in rows)
    assert [row["length"] for row in rows] == [lengths[i] for i in row_indices(rows)]


def first_step(trainer) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    trainer.train()
    logged = {k: v for k, v in trainer.state.log_history[0].items() if k.endswith("loss")}
    return logged, {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def test_streaming_gives_the_first_step_of_the_map_style_dataset(
    shards, pretrain_split, dsclap_checkpoint, tmp_path
):
    """One optimiser step on the stream and on the map-style split, in the same order: no shuffling on either side,
    and the map-style rows put in the order that the stream's length bucketing makes (the same rows in each batch;
    the map-style Trainer reads them sequentially). The same model then sees the same first batch: the same losses,
    and the same weights after the step."""
    processor = AutoProcessor.from_pretrained(dsclap_checkpoint)
    model = DsclapModel.from_pretrained(dsclap_checkpoint)
    stream = prepare_pretraining_stream(
        load_dataset(str(shards), split="pretrain", streaming=True),
        batch_size=4,
        buffer_batches=2,
        sampling_rate=processor.feature_extractor.sampling_rate,
        min_samples=min_audio_samples(processor.feature_extractor, model.audio_model),
        seed=0,
    )
    # The order the bucketing gives the map-style rows (lengths from the stored durations, chunk order from the same
    # seed and epoch): the stream's own order, and the first batch is the shortest half of the first 8 rows.
    rows = add_length_column(add_row_index(pretrain_split))
    order = row_indices(length_bucketed(rows, 4, 2, rng=np.random.default_rng([0, 0])))
    assert row_indices(stream) == order
    args = TrainingArguments(
        str(tmp_path),
        max_steps=1,
        per_device_train_batch_size=4,
        logging_steps=1,
        learning_rate=1e-3,
        train_sampling_strategy="sequential",
        remove_unused_columns=False,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        dataloader_pin_memory=False,
    )
    collator = DataCollatorForAudioText(processor, index_column=ROW_INDEX_COLUMN)
    streamed = first_step(
        StreamingAudioTextTrainer(model=model, args=args, train_dataset=stream, data_collator=collator)
    )
    model = DsclapModel.from_pretrained(dsclap_checkpoint)
    mapped = first_step(
        AudioTextTrainer(model=model, args=args, train_dataset=rows.select(order), data_collator=collator)
    )
    assert streamed[0].keys() == mapped[0].keys() >= {"loss", "audio_contrastive_loss", "text_matching_loss"}
    for name, value in mapped[0].items():
        assert streamed[0][name] == pytest.approx(value, rel=1e-6), name
    for name, weight in mapped[1].items():
        torch.testing.assert_close(streamed[1][name], weight, rtol=1e-6, atol=1e-7, msg=name)


def run_pretrain_main():
    spec = importlib.util.spec_from_file_location("run_pretrain", SCRIPTS / "run_pretrain.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its argument dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module.main


def test_run_pretrain_streaming_needs_max_steps(shards, tmp_path):
    main = run_pretrain_main()
    common = [
        "--streaming",
        "--dataset_name",
        str(shards),
        "--output_dir",
        str(tmp_path / "m"),
        "--report_to",
        "none",
    ]
    with pytest.raises(ValueError, match="set --max_steps"):
        main(common)
    with pytest.raises(ValueError, match="--streaming does not apply to --model_type lrat"):
        main([*common, "--max_steps", "2", "--model_type", "lrat"])
    with pytest.raises(ValueError, match="--dataset_name and --dataset_path"):
        main([*common, "--max_steps", "2", "--dataset_path", str(tmp_path)])


def test_run_pretrain_streams_shards_end_to_end(shards, tiny_text_encoder, tmp_path):
    out = tmp_path / "dsclap-stream"
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPTS / "run_pretrain.py"),
            "--streaming",
            "--dataset_name",
            str(shards),
            "--text_model_name_or_path",
            str(tiny_text_encoder),
            "--streaming_buffer_batches",
            "2",
            "--max_steps",
            "2",
            "--logging_steps",
            "1",
            "--per_device_train_batch_size",
            "4",
            "--per_device_eval_batch_size",
            "8",
            "--output_dir",
            str(out),
            "--report_to",
            "none",
            "--save_strategy",
            "no",
            "--disable_tqdm",
            "true",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "pretrain_results.json").read_text())
    assert results["train_steps"] == 2 and "train_rows" not in results
    # The validation split (8 rows) was read into memory and evaluated before and after.
    assert results["eval_samples"] == 8 and "initial_eval_audio_to_text_r@1" in results
    state = json.loads((out / "trainer_state.json").read_text())
    assert [entry["step"] for entry in state["log_history"] if "loss" in entry] == [1, 2]
    assert imread(out / "training_curves.png").shape[2] == 4
    assert type(AutoModel.from_pretrained(out)).__name__ == "DsclapModel"


TWO_PROCESS_SCRIPT = """
import json, sys
from datasets import load_dataset
from transformers import AutoProcessor, TrainingArguments
from audiolang import DsclapModel
from audiolang.training import ROW_INDEX_COLUMN, DataCollatorForAudioText
from audiolang.training.streaming import StreamingAudioTextTrainer, prepare_pretraining_stream

shards, checkpoint, out = sys.argv[1:4]
args = TrainingArguments(out, max_steps=2, per_device_train_batch_size=2, report_to="none", save_strategy="no",
                         remove_unused_columns=False, ddp_backend="gloo", use_cpu=True, disable_tqdm=True)
stream = prepare_pretraining_stream(load_dataset(shards, split="pretrain", streaming=True), batch_size=2,
                                    rank=args.process_index, world_size=args.world_size, buffer_batches=1)
collator = DataCollatorForAudioText(AutoProcessor.from_pretrained(checkpoint), index_column=ROW_INDEX_COLUMN)
seen = []

def collate(rows):
    seen.extend(row[ROW_INDEX_COLUMN] for row in rows)
    return collator(rows)

model = DsclapModel.from_pretrained(checkpoint)
StreamingAudioTextTrainer(model=model, args=args, train_dataset=stream, data_collator=collate).train()
json.dump(seen, open(f"{out}/rows-{args.process_index}.json", "w"))
"""


@pytest.mark.slow
def test_torchrun_two_processes_each_train_on_their_own_shard(shards, dsclap_checkpoint, tmp_path):
    """A real 2-process run (gloo, CPU): each process trains on the rows of its own shard, first batches first;
    neither reads the other's (accelerate would otherwise dispatch process 0's batches or split them again)."""
    script = tmp_path / "train.py"
    script.write_text(TWO_PROCESS_SCRIPT)
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29547",
         str(script), str(shards), str(dsclap_checkpoint), str(tmp_path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = [json.loads((tmp_path / f"rows-{rank}.json").read_text()) for rank in (0, 1)]
    # Two steps of two rows each: rows 0-3 of shard 0 on process 0, rows 8-11 of shard 1 on process 1 (accelerate
    # collates one batch ahead, so a third batch of the same shard may have been read too).
    assert sorted(seen[0][:4]) == [0, 1, 2, 3] and set(seen[0]) <= set(range(8))
    assert sorted(seen[1][:4]) == [8, 9, 10, 11] and set(seen[1]) <= set(range(8, 16))
