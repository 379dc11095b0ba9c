"""The run scripts end to end on a tiny corpus: pre-train DSCLAP and CTAL, fine-tune them (and Turbo), reload with Auto
classes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import load_from_disk
from huggingface_hub import ModelCard
from transformers import (
    AutoModel,
    AutoModelForAudioXVector,
    AutoModelForPreTraining,
    AutoModelForSequenceClassification,
    AutoProcessor,
)

import audiolang  # noqa: F401  (registers the families)
from audiolang.data import build_corpus

SCRIPTS = Path(__file__).resolve().parent.parent / "run_scripts"
COMMON = [
    "--report_to",
    "none",
    "--save_strategy",
    "no",
    "--per_device_train_batch_size",
    "8",
    "--per_device_eval_batch_size",
    "8",
    "--dataloader_num_workers",
    "0",
    "--disable_tqdm",
    "true",
]


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("scripts") / "corpus"
    build_corpus("tiny", output_dir=path, seed=0, progress=False)
    return path


@pytest.fixture(scope="module")
def pretrained(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("scripts") / "dsclap"
    init = out.parent / "dsclap-init"
    run(
        "run_pretrain.py",
        "--model_type",
        "dsclap",
        "--preset",
        "tiny",
        "--dataset_path",
        str(corpus),
        "--output_dir",
        str(out),
        "--save_initial_model",
        str(init),
        "--num_train_epochs",
        "1",
        "--max_train_samples",
        "24",
        "--train_sampling_strategy",
        "group_by_length",
        *COMMON,
    )
    return out, init


def test_pretrain_writes_a_loadable_model_with_card(pretrained):
    out, init = pretrained
    results = json.loads((out / "pretrain_results.json").read_text())
    assert results["train_loss"] > 0 and 0.0 <= results["eval_audio_to_text_r@1"] <= 1.0
    model = AutoModel.from_pretrained(out)
    processor = AutoProcessor.from_pretrained(out)
    assert type(model).__name__ == "DsclapModel" and type(processor).__name__ == "DsclapProcessor"
    assert ModelCard.load(out / "README.md").data.pipeline_tag == "zero-shot-audio-classification"
    # pre-training changed the weights the baseline keeps
    initial_model = AutoModel.from_pretrained(init)
    before = initial_model.state_dict()
    after = model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_pretrain_reports_retrieval_before_and_after(pretrained, corpus):
    """`initial_eval_*` is the retrieval of the saved baseline, `eval_*` that of the saved model, on the validation
    split (recomputed here with the same function)."""
    from datasets import load_from_disk

    from audiolang.training import embed_dataset, retrieval_metrics

    out, init = pretrained
    results = json.loads((out / "pretrain_results.json").read_text())
    valid = load_from_disk(str(corpus))["validation"]
    for folder, prefix in ((init, "initial_eval_"), (out, "eval_")):
        model = AutoModel.from_pretrained(folder).eval()
        audio, text = embed_dataset(
            model, AutoProcessor.from_pretrained(folder), valid, "asr_text", batch_size=8
        )
        for key, value in retrieval_metrics(audio, text).items():
            assert results[prefix + key] == pytest.approx(float(value), abs=1e-6), (folder, key)


def test_pretrain_transcribes_when_there_is_no_text(corpus, tmp_path):
    """ASR-transcribing-then-training: a dataset with audio only is transcribed first."""
    from datasets import load_from_disk

    audio_only = (
        load_from_disk(str(corpus))["pretrain"].select(range(8)).select_columns(["audio", "duration"])
    )
    audio_only.save_to_disk(str(tmp_path / "raw"))
    proc = run(
        "run_pretrain.py",
        "--dataset_path",
        str(tmp_path / "raw"),
        "--train_split",
        "pretrain",
        "--validation_split",
        "",
        "--output_dir",
        str(tmp_path / "m"),
        "--max_steps",
        "1",
        *COMMON,
    )
    assert "transcribing 8 clips" in proc.stderr
    assert (tmp_path / "m" / "model.safetensors").is_file()


def test_finetune_from_pretrained(pretrained, corpus, tmp_path):
    out, _ = pretrained
    run(
        "run_finetune.py",
        "--model_name_or_path",
        str(out),
        "--task",
        "directed",
        "--dataset_path",
        str(corpus),
        "--train_size",
        "16",
        "--num_train_epochs",
        "1",
        "--output_dir",
        str(tmp_path / "ft"),
        "--freeze_audio_encoder",
        "true",
        "--train_sampling_strategy",
        "group_by_length",
        *COMMON,
    )
    results = json.loads((tmp_path / "ft" / "finetune_results.json").read_text())
    assert results["train_size"] == 16 and results["freeze_audio_encoder"] is True
    for key in ("test_accuracy", "test_frr", "test_eer"):
        assert 0.0 <= results[key] <= 1.0
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "ft")
    assert model.config.id2label == {0: "non_directed", 1: "directed"}
    card = ModelCard.load(tmp_path / "ft" / "README.md")
    assert {r.metric_type for r in card.data.eval_results} >= {"accuracy", "frr"}


def test_finetune_turbo_from_a_dsclap_folder(pretrained, corpus, tmp_path):
    """Turbo fine-tuning starts from DSCLAP's encoders and reports alignment/uniformity of the test embeddings."""
    out, _ = pretrained
    run(
        "run_finetune.py",
        "--model_type",
        "turbo",
        "--objective",
        "turbo",
        "--model_name_or_path",
        str(out),
        "--task",
        "emotion",
        "--dataset_path",
        str(corpus),
        "--train_size",
        "16",
        "--max_steps",
        "2",
        "--output_dir",
        str(tmp_path / "turbo"),
        *COMMON,
    )
    results = json.loads((tmp_path / "turbo" / "finetune_results.json").read_text())
    assert results["objective"] == "turbo" and results["model_type"] == "turbo"
    for key in ("test_wa", "test_ua"):
        assert 0.0 <= results[key] <= 1.0
    assert 0.0 <= results["test_alignment"] <= 4.0 and results["test_uniformity_audio"] <= 0.0
    embeddings = np.load(tmp_path / "turbo" / "test_embeddings.npz")
    assert embeddings["audio"].shape == embeddings["text"].shape
    assert len(embeddings["labels"]) == results["test_size"]
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "turbo")
    assert type(model).__name__ == "TurboForSequenceClassification"
    assert type(AutoProcessor.from_pretrained(tmp_path / "turbo")).__name__ == "TurboProcessor"


def test_finetune_k_fold_cross_validation(pretrained, corpus, tmp_path):
    out, _ = pretrained
    run(
        "run_finetune.py",
        "--model_type",
        "turbo",
        "--objective",
        "vanilla",
        "--model_name_or_path",
        str(out),
        "--task",
        "directed",
        "--dataset_path",
        str(corpus),
        "--num_folds",
        "3",
        "--max_steps",
        "1",
        "--output_dir",
        str(tmp_path / "cv"),
        *COMMON,
    )
    results = json.loads((tmp_path / "cv" / "finetune_results.json").read_text())
    folds = results["folds"]
    assert len(folds) == 3
    pooled = sum(load_from_disk(str(corpus))[s].num_rows for s in ("train", "validation", "test"))
    assert sum(fold["test_size"] for fold in folds) == pooled  # every row is tested exactly once
    accuracies = [fold["test_accuracy"] for fold in folds]
    assert results["test_accuracy"] == pytest.approx(np.mean(accuracies))
    assert results["test_accuracy_std"] == pytest.approx(np.std(accuracies, ddof=1))
    assert not (tmp_path / "cv" / "model.safetensors").exists()  # fold models are not kept


def test_finetune_rejects_bad_arguments(pretrained, corpus, tmp_path):
    out, _ = pretrained
    for bad, message in (
        (["--task", "mood"], "unknown task"),
        (["--text_source", "lattice"], "--text_source"),
        (["--objective", "turbo"], "--model_type turbo only"),
        (["--model_type", "turbo", "--objective", "simcse"], "--objective"),
        (["--num_folds", "2"], "--num_folds"),
        (["--task", "speaker"], "speaker-verification head"),
    ):
        proc = subprocess.run(
            [
                sys.executable,
                str(SCRIPTS / "run_finetune.py"),
                "--model_name_or_path",
                str(out),
                "--dataset_path",
                str(corpus),
                "--output_dir",
                str(tmp_path / "x"),
                *bad,
                *COMMON,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode != 0 and message in proc.stderr


@pytest.fixture(scope="module")
def ctal_pretrained(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("scripts") / "ctal"
    init = out.parent / "ctal-init"
    run(
        "run_pretrain.py",
        "--model_type",
        "ctal",
        "--preset",
        "tiny",
        "--dataset_path",
        str(corpus),
        "--output_dir",
        str(out),
        "--save_initial_model",
        str(init),
        "--max_steps",
        "2",
        *COMMON,
    )
    return out, init


def test_ctal_pretrain_trains_a_tokenizer_and_writes_a_loadable_model(ctal_pretrained):
    out, init = ctal_pretrained
    results = json.loads((out / "pretrain_results.json").read_text())
    assert results["train_loss"] > 0 and results["eval_loss"] > 0
    # The same seeded masking of the validation split, before and after pre-training.
    for key in ("eval_mlm_loss", "eval_mlm_accuracy", "eval_mcam_l1"):
        assert results[key] >= 0 and results[f"initial_{key}"] >= 0
    assert results["eval_mlm_loss"] != results["initial_eval_mlm_loss"]
    model = AutoModelForPreTraining.from_pretrained(out)
    processor = AutoProcessor.from_pretrained(out)
    assert type(model).__name__ == "CtalForPreTraining" and type(processor).__name__ == "CtalProcessor"
    assert model.config.vocab_size == len(processor.tokenizer)
    assert processor.tokenizer.mask_token_id == model.config.mask_token_id
    assert ModelCard.load(out / "README.md").data.pipeline_tag == "feature-extraction"
    before = AutoModelForPreTraining.from_pretrained(init).state_dict()
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("task", ["valence", "speaker"])
def test_ctal_finetune(ctal_pretrained, corpus, tmp_path, task):
    out, _ = ctal_pretrained
    run(
        "run_finetune.py",
        "--model_type",
        "ctal",
        "--model_name_or_path",
        str(out),
        "--task",
        task,
        "--dataset_path",
        str(corpus),
        "--max_steps",
        "2",
        "--output_dir",
        str(tmp_path / task),
        *COMMON,
    )
    results = json.loads((tmp_path / task / "finetune_results.json").read_text())
    if task == "valence":
        assert results["test_mae"] >= 0 and -1 <= results["test_pearson"] <= 1
        assert type(AutoModelForSequenceClassification.from_pretrained(tmp_path / task)).__name__ == (
            "CtalForSequenceClassification"
        )
    else:
        unseen = load_from_disk(str(corpus))["speaker_test"]
        n = unseen.num_rows
        assert results["test_size"] == n
        assert results["test_target_trials"] + results["test_nontarget_trials"] == n * (n - 1) // 2
        assert 0.0 <= results["test_eer"] <= 1.0
        assert type(AutoModelForAudioXVector.from_pretrained(tmp_path / task)).__name__ == "CtalForXVector"


@pytest.mark.slow
def test_pretrain_under_torchrun_two_cpu_processes(corpus, tmp_path):
    """torchrun --nproc_per_node 2 on CPU: gloo, DDP, negatives gathered across both processes."""
    out = tmp_path / "ddp"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            "29533",
            str(SCRIPTS / "run_pretrain.py"),
            "--preset",
            "tiny",
            "--dataset_path",
            str(corpus),
            "--output_dir",
            str(out),
            "--max_steps",
            "2",
            "--max_train_samples",
            "32",
            "--ddp_backend",
            "gloo",
            *COMMON,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "pretrain_results.json").read_text())
    assert results["train_loss"] > 0
    assert AutoModel.from_pretrained(out) is not None


def test_demo_pretrains_on_a_pretrained_whisper_tower(corpus, whisper_tiny_checkpoint, tmp_path):
    """`make demo` end to end at tiny sizes: DSCLAP on a (tiny, random) Whisper checkpoint whose stem and lowest layer
    are frozen in pre-training, then fine-tuning with and without pre-training on the same frozen tower."""
    import shutil

    out = tmp_path / "demo"
    shutil.copytree(corpus, out / "corpus-tiny-seed0")  # the demo's corpus folder, already built
    proc = run(
        "run_demo.py",
        "--preset", "tiny",
        "--output_dir", str(out),
        "--model_preset", "tiny",
        "--audio_model", str(whisper_tiny_checkpoint),
        "--num_frozen_audio_layers", "1",
        "--pretrain_epochs", "1",
        "--finetune_epochs", "1",
        "--batch_size", "8",
        "--tasks", "directed",
    )  # fmt: skip
    assert "skipping" not in proc.stderr  # every step ran
    config = json.loads((out / "dsclap" / "config.json").read_text())
    assert config["audio_config"]["model_type"] == "whisper"
    assert config["num_frozen_audio_layers"] == 1 and config["freeze_audio_feature_encoder"] is True
    table = (out / "results.md").read_text().splitlines()
    assert [row.split("|")[2].strip() for row in table[2:]] == [
        "DSCLAP pre-trained",
        "no pre-training",
        "text tower alone",
        "audio tower alone",
        "TF-IDF + LR (text only)",
    ]
    assert table[0].endswith("test_natural accuracy |")
    results = json.loads((out / "results.json").read_text())
    assert {"initial_eval_audio_to_text_r@1", "eval_audio_to_text_r@1"} <= set(results["pretrain"])
    # the classifier fine-tuned from the pre-trained model is kept for the pipeline and the app, the baseline is not
    assert (out / "finetune" / "directed-pretrained" / "model.safetensors").is_file()
    assert not (out / "finetune" / "directed-baseline" / "model.safetensors").exists()
    # the kept classifier runs Whisper tiny.en on raw audio (the recogniser chosen on natural speech)
    from audiolang.pipelines import saved_inference_asr_config

    assert saved_inference_asr_config(out / "finetune" / "directed-pretrained")[0] == "whisper-tiny.en"
    # every row is scored on the natural-voice split too, by the same run (or the same rows for TF-IDF)
    for row in results["finetune"]:
        assert 0.0 <= row["natural_accuracy"] <= 1.0
        if row["init"] != "TF-IDF + LR (text only)":
            assert row["natural_accuracy"] == row["test_natural_accuracy"]
    # the card names the Hub ids among the base models; a local folder means nothing on the Hub
    card = ModelCard.load(out / "dsclap" / "README.md").data
    assert card.base_model == ["sentence-transformers/all-MiniLM-L6-v2"]


def test_finetune_config_overrides_reach_the_family_and_the_encoder_configs(dsclap_checkpoint: Path) -> None:
    sys.path.insert(0, str(SCRIPTS))
    from run_finetune import FinetuneArguments, config_overrides, load_model, resolve_task

    args = FinetuneArguments(
        model_name_or_path=str(dsclap_checkpoint),
        model_type="turbo",
        task="emotion",
        freeze_audio_encoder=True,
        config_overrides="audio_config.use_weighted_layer_sum=true, num_frozen_audio_layers=1,hidden_dropout=0.05",
    )
    assert config_overrides(args) == {
        "num_frozen_audio_layers": 1,
        "hidden_dropout": 0.05,
        "audio_config": {"use_weighted_layer_sum": True},
    }
    model = load_model(args, resolve_task("emotion", None, None), ["neutral", "happy", "sad"])
    assert model.config.audio_config.use_weighted_layer_sum and model.config.num_frozen_audio_layers == 1
    assert model.audio_layer_weights.requires_grad and not any(
        p.requires_grad for p in model.audio_model.parameters()
    )
    for bad, message in (
        ("vision_config.image_size=8", "has no encoder config 'vision_config'"),
        ("audio_config.no_such_field=1", "no_such_field"),
    ):
        with pytest.raises(ValueError, match=message):
            config_overrides(FinetuneArguments(**{**vars(args), "config_overrides": bad}))
