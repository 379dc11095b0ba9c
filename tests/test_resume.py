"""The run scripts' Trainer lifecycle: a run killed with SIGKILL after its first checkpoint and re-run with the same
command resumes from that checkpoint and ends with the weights of an uninterrupted run, bit for bit (pre-training and
fine-tuning); every checkpoint folder carries its processor.

Synthetic data (noise clips, a tiny BERT text tower built here) keep each run to a few seconds."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import SCRIPTS, assert_same_weights
from transformers import AutoModel, AutoProcessor

import audiolang  # noqa: F401  (registers the families)
from audiolang.training import last_complete_checkpoint, resume_checkpoint

COMMON = [
    "--report_to", "none",
    "--per_device_train_batch_size", "4",
    "--per_device_eval_batch_size", "4",
    "--dataloader_num_workers", "0",
    "--disable_tqdm", "true",
    "--seed", "3",
    # Enough steps after the first checkpoint that the kill lands mid-run, even on a loaded machine.
    "--max_steps", "24",
    "--save_steps", "4",
    "--logging_steps", "4",
]  # fmt: skip


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def kill_after_first_checkpoint(script: str, output_dir: Path, *args: str) -> None:
    """Start the script, SIGKILL it as soon as its first checkpoint is complete (Trainer writes trainer_state.json
    last), and check that it was still running then."""
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPTS / script), *args, "--output_dir", str(output_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not output_dir.is_dir() or last_complete_checkpoint(output_dir) is None:
        assert proc.poll() is None, f"the run ended before its first checkpoint: {proc.stderr.read()[-3000:]}"
        assert time.monotonic() < deadline, "no checkpoint after 300 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (output_dir / "model.safetensors").exists()


def assert_resumes_bit_exactly(script: str, args: list[str], tmp_path: Path) -> Path:
    """Run `script` uninterrupted, then killed after its first checkpoint and re-run with the same command; the
    re-run resumes from a checkpoint and ends with the same weights. Returns the resumed run's folder."""
    run(script, *args, "--output_dir", str(tmp_path / "uninterrupted"))
    killed = tmp_path / "killed"
    kill_after_first_checkpoint(script, killed, *args)
    resumed = run(script, *args, "--output_dir", str(killed))
    assert f"resuming training from {killed / 'checkpoint-'}" in resumed.stderr
    assert_same_weights(tmp_path / "uninterrupted", killed)
    return killed


def test_killed_pretraining_resumes_bit_exactly(audio_text_dataset, tiny_text_encoder, tmp_path):
    args = [
        "--model_type", "dsclap",
        "--preset", "tiny",
        "--text_model_name_or_path", str(tiny_text_encoder),
        "--dataset_path", str(audio_text_dataset),
        "--train_split", "pretrain",
        "--validation_split", "",
        *COMMON,
    ]  # fmt: skip
    killed = assert_resumes_bit_exactly("run_pretrain.py", args, tmp_path)
    # Every checkpoint carries the processor: it loads with AutoProcessor, as the final folder does.
    checkpoint = killed / "checkpoint-4"
    assert type(AutoProcessor.from_pretrained(checkpoint)).__name__ == "DsclapProcessor"
    assert type(AutoModel.from_pretrained(checkpoint)).__name__ == "DsclapModel"


@pytest.mark.slow
def test_killed_ctal_pretraining_resumes_bit_exactly(audio_text_dataset, tmp_path):
    """CTAL's collator masks tokens and frames at random: the masks resume too (they come from torch's generator,
    which checkpoints save)."""
    args = [
        "--model_type", "ctal",
        "--preset", "tiny",
        "--tokenizer_vocab_size", "300",
        "--dataset_path", str(audio_text_dataset),
        "--train_split", "pretrain",
        "--validation_split", "",
        *COMMON,
    ]  # fmt: skip
    assert_resumes_bit_exactly("run_pretrain.py", args, tmp_path)


def test_killed_finetuning_resumes_bit_exactly(audio_text_dataset, dsclap_checkpoint, tmp_path):
    args = [
        "--model_name_or_path", str(dsclap_checkpoint),
        "--task", "directed",
        "--dataset_path", str(audio_text_dataset),
        *COMMON,
    ]  # fmt: skip
    assert_resumes_bit_exactly("run_finetune.py", args, tmp_path)


@pytest.fixture
def incomplete_checkpoint(tmp_path) -> Path:
    """An output folder whose last checkpoints were being written when the run died: trainer_state.json cut short
    at step 8, not yet written at step 12."""
    from transformers.trainer import TRAINER_STATE_NAME

    for step, state in ((4, "{}"), (8, '{"global_st'), (12, None)):
        folder = tmp_path / "out" / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"")
        if state is not None:
            (folder / TRAINER_STATE_NAME).write_text(state)
    return tmp_path / "out"


def test_resume_skips_a_checkpoint_that_was_being_written(incomplete_checkpoint):
    assert resume_checkpoint(incomplete_checkpoint) == str(incomplete_checkpoint / "checkpoint-4")
    assert resume_checkpoint(incomplete_checkpoint, overwrite_output_dir=True) is None
