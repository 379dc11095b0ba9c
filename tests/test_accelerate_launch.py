"""`accelerate launch` of every pre-training family on two CPU processes (gloo) ends with the weights of the same
command under `torchrun`, bit for bit: the same two processes, the same gathered contrastive loss (DSCLAP), the same
IDP store (lrat: its second denoising epoch trains on the store rebuilt after the first). DSCLAP with gradient caching
(`--contrastive_micro_batch_size`) under accelerate matches the uncached torchrun run to float tolerance.

On one machine, accelerate 1.x starts several CPU processes with `--multi_gpu --num_processes N` (it runs torchrun);
`accelerate launch --cpu --num_processes N` starts one process, which the run scripts refuse, naming
the commands that work (docs/training-at-scale.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import SCRIPTS, assert_same_weights
from safetensors.torch import load_file
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, Wav2Vec2Model

from audiolang import DsclapConfig
from audiolang.training import AudioTextTrainingArguments

ACCELERATE = Path(sys.executable).with_name("accelerate")
TWO_CPU_PROCESSES = {
    "accelerate": [str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", "2", "--main_process_port"],
    "torchrun": [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port"],
}
COMMON = [
    "--preset", "tiny",
    "--train_split", "pretrain",
    "--validation_split", "",
    "--per_device_train_batch_size", "4",
    "--max_steps", "2",
    "--save_strategy", "no",
    "--ddp_backend", "gloo",
    "--use_cpu", "true",
    "--report_to", "none",
    "--dataloader_num_workers", "0",
    "--disable_tqdm", "true",
    "--seed", "3",
]  # fmt: skip


def family_args(family: str, dataset: Path, text_encoder: Path) -> list[str]:
    extra = {
        "dsclap": ["--text_model_name_or_path", str(text_encoder)],
        "ctal": ["--tokenizer_vocab_size", "300"],
        "lrat": [
            "--tokenizer_vocab_size",
            "300",
            "--num_paired",
            "4",
            "--warmup_epochs",
            "1",
            "--num_iterations",
            "2",
            "--max_steps",
            "-1",
        ],  # fmt: skip
    }[family]
    return ["--model_type", family, "--dataset_path", str(dataset), *COMMON, *extra]


def launch(launcher: str, port: int, output_dir: Path, args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            *TWO_CPU_PROCESSES[launcher],
            str(port),
            str(SCRIPTS / "run_pretrain.py"),
            *args,
            "--output_dir",
            str(output_dir),
        ],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow  # two two-process runs per family, each starting two interpreters importing transformers: ~45 s
@pytest.mark.parametrize("family", ["dsclap", "ctal", "lrat"])
def test_accelerate_launch_matches_torchrun(family, audio_text_dataset, tiny_text_encoder, tmp_path) -> None:
    args = family_args(family, audio_text_dataset, tiny_text_encoder)
    port = 29600 + 10 * ["dsclap", "ctal", "lrat"].index(family)
    launch("torchrun", port, tmp_path / "torchrun", args)
    launch("accelerate", port + 1, tmp_path / "accelerate", args)
    assert_same_weights(tmp_path / "torchrun", tmp_path / "accelerate")
    results = [
        json.loads((tmp_path / run / "pretrain_results.json").read_text())
        for run in ("torchrun", "accelerate")
    ]
    # lrat's weights after its second denoising epoch depend on the IDP store rebuilt (in shards, gathered) after the
    # first: equal weights mean equal stores.
    if family != "lrat":
        assert results[0]["train_loss"] == results[1]["train_loss"]


def without_dropout(model: PreTrainedModel, folder: Path) -> Path:
    """`model` saved with every dropout probability of its config at 0."""
    for name, value in model.config.to_dict().items():
        if "dropout" in name and isinstance(value, float):
            setattr(model.config, name, 0.0)
    model.save_pretrained(folder)
    return folder


@pytest.mark.slow  # two two-process runs: ~1 min
def test_gradient_caching_under_accelerate_matches_the_whole_batch_under_torchrun(
    audio_text_dataset, tiny_text_encoder, tmp_path
) -> None:
    """Towers without dropout (the micro-batches draw their own masks otherwise): two accelerate processes with
    micro-batches of 2 (their gradients averaged by AudioTextTrainer, DDP's hooks being bypassed) train to the
    weights of torchrun's processes back-propagating their whole local batch of 4."""
    text = without_dropout(AutoModel.from_pretrained(tiny_text_encoder), tmp_path / "text")
    AutoTokenizer.from_pretrained(tiny_text_encoder).save_pretrained(text)
    audio = without_dropout(Wav2Vec2Model(DsclapConfig.from_preset("tiny").audio_config), tmp_path / "audio")
    args = [*family_args("dsclap", audio_text_dataset, text), "--audio_model_name_or_path", str(audio)]
    launch("torchrun", 29640, tmp_path / "whole", args)
    launch("accelerate", 29641, tmp_path / "cached", [*args, "--contrastive_micro_batch_size", "2"])
    whole, cached = (
        json.loads((tmp_path / run / "pretrain_results.json").read_text()) for run in ("whole", "cached")
    )
    assert cached["train_loss"] == pytest.approx(whole["train_loss"], abs=1e-5)
    expected, actual = (load_file(tmp_path / run / "model.safetensors") for run in ("whole", "cached"))
    for name, value in expected.items():
        torch.testing.assert_close(actual[name], value, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.slow
def test_accelerate_launch_cpu_with_several_processes_is_refused(
    audio_text_dataset, tiny_text_encoder, tmp_path
):
    """It would start one process, which would train alone (or fail inside accelerate with --ddp_backend gloo)."""
    args = family_args("dsclap", audio_text_dataset, tiny_text_encoder)
    proc = subprocess.run(
        [str(ACCELERATE), "launch", "--cpu", "--num_processes", "2", "--main_process_port", "29650",
         str(SCRIPTS / "run_pretrain.py"), *args, "--max_steps", "1", "--output_dir", str(tmp_path)],
        capture_output=True, text=True, check=False, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert proc.returncode != 0
    assert "ValueError: accelerate launch --cpu --num_processes N started one process, not N" in proc.stderr
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_the_single_process_launch_is_recognised_from_its_environment(monkeypatch, tmp_path) -> None:
    """What `accelerate launch --cpu --num_processes 2` exports (ACCELERATE_USE_CPU, MASTER_PORT, no WORLD_SIZE)."""
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")
    monkeypatch.setenv("MASTER_PORT", "29500")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(ValueError, match="--multi_gpu --num_processes N"):
        AudioTextTrainingArguments(str(tmp_path), report_to="none")
    monkeypatch.delenv("MASTER_PORT")  # a plain single-process launch
    assert AudioTextTrainingArguments(str(tmp_path), report_to="none").world_size == 1
