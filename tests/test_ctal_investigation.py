"""The switches and guards of the CTAL investigation (issue 13) and the helpers of its sweep: per-module learning
rates that name nothing, the encoder's own fine-tuning rate, one pre-training objective at a time, features without
per-utterance normalisation, and the sweep's arms, curves and tables."""

from __future__ import annotations

import json
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoProcessor, TrainingArguments

from audiolang import CtalConfig, CtalForSequenceClassification
from audiolang.training import ModuleLearningRateTrainer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import ctal_investigation as sweep  # noqa: E402
from _common import Results  # noqa: E402

COMMON = [
    "--report_to", "none",
    "--per_device_train_batch_size", "4",
    "--per_device_eval_batch_size", "4",
    "--dataloader_num_workers", "0",
    "--disable_tqdm", "true",
]  # fmt: skip


def ctal_classifier() -> CtalForSequenceClassification:
    torch.manual_seed(0)
    return CtalForSequenceClassification(CtalConfig.from_preset("tiny", vocab_size=50, num_labels=3))


def test_a_learning_rate_for_modules_the_model_lacks_is_an_error(tmp_path: Path) -> None:
    """Regression: the run scripts pass `{"text_model.": ..., "audio_model.": ...}`, which name no CTAL parameter, so
    `--text_encoder_learning_rate` trained every CTAL parameter at `--learning_rate` without a word."""
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=1e-3, report_to="none")
    trainer = ModuleLearningRateTrainer(
        model=ctal_classifier(), args=args, module_learning_rates={"text_model.": 1e-5}
    )
    with pytest.raises(
        ValueError, match=r"\['text_model.'\].*match no parameter.*\['audio_attention_pooling'"
    ):
        trainer.create_optimizer()


def test_the_encoder_rate_reaches_the_ctal_backbone_only(tmp_path: Path) -> None:
    model = ctal_classifier()
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=1e-3, report_to="none")
    optimizer = ModuleLearningRateTrainer(
        model=model, args=args, module_learning_rates={"ctal.": 2e-5}
    ).create_optimizer()
    rate_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    for name, parameter in model.named_parameters():
        assert rate_of[id(parameter)] == (2e-5 if name.startswith("ctal.") else 1e-3), name


def run_script(script: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "run_scripts" / script), *argv, *COMMON],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("model_type", "option", "message"),
    [
        ("ctal", "--text_encoder_learning_rate", "apply to the dual encoders"),
        ("dsclap", "--encoder_learning_rate", "applies to ctal and lrat"),
    ],
)
def test_finetune_refuses_a_rate_for_modules_the_family_lacks(
    model_type: str, option: str, message: str, tmp_path: Path
) -> None:
    proc = run_script(
        "run_finetune.py",
        "--model_type", model_type,
        "--model_name_or_path", str(tmp_path / "none"),
        "--output_dir", str(tmp_path / "out"),
        option, "1e-5",
    )  # fmt: skip
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr[-2000:]


def test_mlm_only_pretraining_on_unnormalised_features(audio_text_dataset: Path, tmp_path: Path) -> None:
    """`--config_overrides mcam_weight=0` (Table 4's "w/o MCAM") trains the text stream and leaves every audio-stream
    weight exactly as initialised: the text stream never sees the audio, so only MCAM reaches the audio stream.
    `--do_normalize false` is saved with the processor (and so reaches fine-tuning), for the model before
    pre-training too."""
    out, initial = tmp_path / "mlm-only", tmp_path / "initial"
    proc = run_script(
        "run_pretrain.py",
        "--model_type", "ctal",
        "--preset", "tiny",
        "--dataset_path", str(audio_text_dataset),
        "--output_dir", str(out),
        "--save_initial_model", str(initial),
        "--config_overrides", "mcam_weight=0",
        "--do_normalize", "false",
        "--max_steps", "2",
        "--learning_rate", "1e-2",
        "--save_strategy", "no",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    before, after = load_file(initial / "model.safetensors"), load_file(out / "model.safetensors")
    audio = [k for k in after if k.startswith(("ctal.audio_", "acoustic_head."))]
    text = [k for k in after if k.startswith("ctal.text_layers.")]
    assert audio and all(torch.equal(before[k], after[k]) for k in audio)
    assert any(not torch.equal(before[k], after[k]) for k in text)
    assert json.loads((out / "config.json").read_text())["mcam_weight"] == 0
    for folder in (out, initial):
        assert AutoProcessor.from_pretrained(folder).feature_extractor.do_normalize is False
    results = json.loads((out / "pretrain_results.json").read_text())
    assert results["eval_mcam_l1"] == pytest.approx(results["initial_eval_mcam_l1"])  # measured with masking


def test_pretrain_refuses_unnormalised_features_for_dsclap(tmp_path: Path) -> None:
    proc = run_script(
        "run_pretrain.py", "--model_type", "dsclap", "--do_normalize", "false", "--output_dir", str(tmp_path)
    )
    assert proc.returncode != 0 and "--do_normalize false applies to ctal and lrat" in proc.stderr


# --- the sweep's helpers ---------------------------------------------------------------------------------------------


def sweep_args(**overrides) -> Namespace:
    args = sweep.parse_args(["--data_fractions", "--output_dir", "sweep"])
    return Namespace(**{**vars(args), **overrides})


def test_arms_parse_as_run_pretrain_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every arm's argv is accepted by run_pretrain.py's parser, with the arm's switch as the value that wins."""
    import importlib.util

    from transformers import HfArgumentParser

    spec = importlib.util.spec_from_file_location("run_pretrain", ROOT / "run_scripts" / "run_pretrain.py")
    script = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(
        sys.modules, "run_pretrain", script
    )  # its dataclasses resolve their annotations there
    spec.loader.exec_module(script)
    parser = HfArgumentParser(
        (
            script.ModelArguments,
            script.DataArguments,
            script.RunArguments,
            script.LratArguments,
            TrainingArguments,
        )
    )
    args = sweep_args(large_corpus_dir="big")
    parsed = {
        arm: parser.parse_args_into_dataclasses(
            args=[*sweep.pretrain_argv(args, arm, seed=2), "--output_dir", str(tmp_path)]
        )
        for arm in sweep.pretrain_arms(args)
    }
    assert set(parsed) == {"both", "mlm-only", "mcam-only", "no-norm", "long", "large-corpus"}
    model, data, _, _, training = parsed["both"]
    assert (model.model_type, model.preset, training.seed, training.num_train_epochs) == (
        "ctal",
        "small",
        2,
        4.0,
    )
    assert model.save_initial_model == str(Path("sweep") / "initial" / "seed-2")
    assert parsed["no-norm"][0].do_normalize is False
    assert parsed["no-norm"][0].save_initial_model == str(Path("sweep") / "initial-no-norm" / "seed-2")
    assert parsed["mlm-only"][0].config_overrides == "mcam_weight=0"
    assert parsed["mcam-only"][0].config_overrides == "mlm_weight=0"
    assert parsed["long"][4].num_train_epochs == 16 and parsed["long"][4].save_total_limit is None
    assert parsed["mlm-only"][4].save_total_limit == 1  # checkpoints of the curve arms only
    assert parsed["large-corpus"][1].dataset_path == "big"


def probe_line(model: str, seed: int, step: int, accuracy: float, stream: str = "audio") -> dict:
    record = {"stream": stream, "task": "emotion", "accuracy": accuracy}
    return {"kind": "probe", "model": model, "seed": seed, "step": step, "records": [record]}


def test_probe_curves_and_final_records(tmp_path: Path) -> None:
    results = Results(tmp_path / "r.jsonl")
    for line in (
        probe_line("initial", 0, 0, 0.40),
        probe_line("initial", 1, 0, 0.50),
        probe_line("both", 0, 10, 0.30),
        probe_line("both", 1, 10, 0.34),
        probe_line("both", 0, 20, 0.60),
        probe_line("mlm-only", 0, 20, 0.45),
    ):
        results.add(**line)
    curve = sweep.probe_curve(sweep.probe_records(results), "both", "audio", "emotion")
    assert [(step, round(mean, 6)) for step, mean, _ in curve] == [(0, 0.45), (10, 0.32), (20, 0.6)]
    assert curve[1][2] == pytest.approx(0.0282842712)  # sample std of 0.30 and 0.34
    final = {(r["model"], r["seed"]): r["accuracy"] for r in sweep.final_probe_records(results)}
    assert final == {
        ("initial", 0): 0.40,
        ("initial", 1): 0.50,
        ("both", 0): 0.60,
        ("both", 1): 0.34,
        ("mlm-only", 0): 0.45,
    }
    assert (
        Results(tmp_path / "r.jsonl").find(kind="probe", model="both", seed=1, step=10) is not None
    )  # resumes


def test_finetune_table_averages_over_seeds(tmp_path: Path) -> None:
    results = Results(tmp_path / "r.jsonl")
    for seed, wa in ((0, 0.3), (1, 0.5)):
        results.add(
            kind="finetune", start="both", task="emotion", seed=seed, learning_rate=2e-4,
            encoder_learning_rate=2e-5, test_wa=wa, test_ua=wa,
        )  # fmt: skip
    table = sweep.finetune_table(results, [("both", 2e-4, 2e-5), ("initial", 2e-4, None)], ["emotion"])
    rows = table.splitlines()
    assert rows[2] == "| both | encoder 2e-05, head 0.0002 | 0.400 ± 0.141 | 0.400 ± 0.141 |"
    assert rows[3] == "| initial | 0.0002 | - | - |"


def test_quick_and_learning_rate_settings() -> None:
    quick = sweep.parse_args(["--quick", "--finetune_tasks", "emotion"])
    assert quick.long_epochs == 0 and quick.data_fractions == [] and quick.finetune_tasks == ["emotion"]
    assert sweep.learning_rate_settings(quick) == [(2e-4, None), (5e-5, None), (2e-4, 2e-5)]
    assert sweep.seconds_per_row("small", 0.115) == pytest.approx(0.115)
    assert sweep.seconds_per_row("tiny", 0.115) < 0.02 < sweep.seconds_per_row("base", 0.115) / 8


def test_probe_summaries_and_table() -> None:
    from linear_probe import markdown_table, summaries

    records = [
        {"model": "m", "seed": 0, "stream": "audio", "task": "emotion", "accuracy": 0.5, "c": 0.1},
        {"model": "m", "seed": 1, "stream": "audio", "task": "emotion", "accuracy": 0.7, "c": 10.0},
        {"model": "m", "seed": 0, "stream": "audio", "task": "speaker_verification", "eer": 0.3},
    ]
    summary = summaries(records)
    assert summary[0]["seeds"] == [0, 1] and "c" not in summary[0]  # the chosen C is not a result
    assert summary[0]["accuracy"] == pytest.approx(0.6) and summary[0]["accuracy_std"] == pytest.approx(
        0.1414, 1e-3
    )
    assert markdown_table(summary).splitlines() == [
        "| model | stream | emotion accuracy | speaker_verification eer ↓ |",
        "|---|---|---|---|",
        "| m | audio | 0.600 ± 0.141 | 0.300 ± 0.000 |",
    ]


def test_report_without_fine_tuning_has_the_probe_table_only(tmp_path: Path) -> None:
    results = Results(tmp_path / "r.jsonl")
    for line in (probe_line("initial", 0, 0, 0.40), probe_line("both", 0, 20, 0.60)):
        results.add(**line)
    args = sweep.parse_args(["--quick", "--finetune_tasks", "--seeds", "0"])
    report = sweep.report(args, results)
    assert "Fine-tuning" not in report
    assert "| both | audio | 0.600 ± 0.000 |" in report.splitlines()
    with_tasks = sweep.report(
        sweep.parse_args(["--quick", "--finetune_tasks", "emotion", "--seeds", "0"]), results
    )
    assert "## Fine-tuning at the reference rate" in with_tasks
