"""What the run scripts refuse before they train: output folders holding something else, the model being fine-tuned
as its own output, a folder of another family, and bad clips (named by split, row and file, or skipped)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from datasets import DatasetDict

from audiolang.training import check_output_folder, resume_checkpoint

SCRIPTS = Path(__file__).resolve().parent.parent / "run_scripts"
COMMON = [
    "--report_to", "none",
    "--per_device_train_batch_size", "4",
    "--per_device_eval_batch_size", "4",
    "--dataloader_num_workers", "0",
    "--disable_tqdm", "true",
    "--max_steps", "2",
]  # fmt: skip


def script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPTS / name), *args, *COMMON], capture_output=True, text=True, check=False
    )


def test_an_output_folder_with_something_else_is_refused_unless_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(
        ValueError, match=r"'.*out' is not empty \(it holds notes.txt\).*--overwrite_output_dir"
    ):
        resume_checkpoint(out)
    assert resume_checkpoint(out, overwrite_output_dir=True) is None
    # A folder holding only checkpoints that never completed is the run's own: it starts afresh there.
    (out / "notes.txt").unlink()
    (out / "checkpoint-2").mkdir()
    assert resume_checkpoint(out) is None
    check_output_folder(out, "--output_dir", overwrite=False)
    assert (out / "checkpoint-2").is_dir()


def test_the_model_being_trained_is_never_the_output(dsclap_checkpoint):
    for overwrite in (False, True):
        with pytest.raises(ValueError, match="is the model being trained.*Choose another --output_dir"):
            resume_checkpoint(dsclap_checkpoint, overwrite, model_name_or_path=str(dsclap_checkpoint))


def test_scripts_refuse_before_touching_anything(audio_text_dataset, dsclap_checkpoint, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    before = {p.name: p.stat().st_mtime_ns for p in dsclap_checkpoint.iterdir()}
    cases = [
        (
            "run_pretrain.py",
            ["--dataset_path", str(audio_text_dataset), "--output_dir", str(tmp_path)],
            "is not empty (it holds notes.txt)",
        ),
        (
            "run_finetune.py",
            ["--model_name_or_path", str(dsclap_checkpoint), "--output_dir", str(dsclap_checkpoint)],
            "is the model being trained (--model_name_or_path)",
        ),
        (
            "run_finetune.py",
            [
                "--model_type",
                "ctal",
                "--model_name_or_path",
                str(dsclap_checkpoint),
                "--output_dir",
                str(tmp_path),
            ],
            "holds a dsclap model, not ctal: pass --model_type dsclap",
        ),
    ]
    for name, args, message in cases:
        proc = script(name, *args)
        assert proc.returncode != 0 and message in proc.stderr, proc.stderr[-2000:]
    assert {p.name: p.stat().st_mtime_ns for p in dsclap_checkpoint.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def _wav(samples: np.ndarray, sampling_rate: int) -> dict:
    buffer = io.BytesIO()
    sf.write(buffer, samples, sampling_rate, format="WAV")
    return {"bytes": buffer.getvalue(), "path": None}


@pytest.fixture(scope="module")
def bad_audio_dataset(tmp_path_factory, audio_text_split) -> Path:
    """train/validation/test with one corrupt clip (train row 2), one silent clip (validation row 1) and one 8 kHz
    clip (test row 3)."""
    splits = {}
    for seed, (split, rows, bad_row, bad) in enumerate(
        [
            ("train", 12, 2, {"bytes": b"RIFF\x00\x00not a wav file", "path": None}),
            ("validation", 6, 1, _wav(np.zeros(8000, np.float32), 16_000)),
            ("test", 6, 3, _wav(0.1 * np.sin(np.arange(4000, dtype=np.float32)), 8_000)),
        ]
    ):
        splits[split] = audio_text_split(rows, seed, replace={bad_row: bad})
    folder = tmp_path_factory.mktemp("bad_audio")
    DatasetDict(splits).save_to_disk(str(folder))
    return folder


def test_bad_clips_are_named_together_then_skipped(bad_audio_dataset, dsclap_checkpoint, tmp_path):
    args = ["--model_name_or_path", str(dsclap_checkpoint), "--dataset_path", str(bad_audio_dataset)]
    proc = script("run_finetune.py", *args, "--output_dir", str(tmp_path / "error"))
    assert proc.returncode != 0
    message = proc.stderr[proc.stderr.index("ValueError: 3 bad audio clip(s)") :]
    assert "split 'train' row 2 (audio stored in the dataset): cannot be decoded" in message
    assert "split 'validation' row 1 (audio stored in the dataset): silent" in message
    assert (
        "split 'test' row 3 (audio stored in the dataset): recorded at 8000 Hz, below the model's 16000"
        in message
    )
    assert "--bad_audio skip" in message
    assert not (tmp_path / "error").exists()  # nothing trained, nothing written

    proc = script("run_finetune.py", *args, "--output_dir", str(tmp_path / "skip"), "--bad_audio", "skip")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for count, split in ((1, "train"), (1, "validation"), (1, "test")):
        assert f"skipping {count} bad audio clip(s) of split {split!r}" in proc.stderr
    results = json.loads((tmp_path / "skip" / "finetune_results.json").read_text())
    assert (results["train_size"], results["test_size"]) == (11, 5)
