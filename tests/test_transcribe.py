"""Dataset transcription: transcribe_dataset, and run_scripts/run_transcribe.py sharded, resumed and merged."""

from __future__ import annotations

import functools
import importlib.util
import io
import logging
import runpy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from datasets import Audio, Dataset, DatasetDict, Value, load_from_disk

from audiolang.data.asr import (
    PocketSphinxASR,
    audio_to_array,
    build_pocketsphinx_lm,
    shard_dir,
    transcribe_dataset,
)
from audiolang.metrics.asr import word_error_rate

SCRIPT = Path(__file__).resolve().parents[1] / "run_scripts" / "run_transcribe.py"
# Five rows, so that two contiguous shards are unequal (3 + 2).
SENTENCES = [
    "turn on the radio",
    "navigate to the airport",
    "call my wife please",
    "play some jazz music",
    "open the driver window",
]


@functools.cache
def load_script() -> Callable[[list[str]], None]:
    """run_transcribe.main, imported from its file (run_scripts is not a package)."""
    spec = importlib.util.spec_from_file_location("run_transcribe", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve the argument annotations through it
    spec.loader.exec_module(module)
    return module.main


@pytest.fixture(scope="module")
def asr_dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """espeak-ng's 22.05 kHz WAV bytes under an Audio(sampling_rate=16000) feature, which resamples them."""
    workdir = tmp_path_factory.mktemp("espeak")
    audio = []
    for i, text in enumerate(SENTENCES):
        wav = workdir / f"{i}.wav"
        subprocess.run(["espeak-ng", "-w", str(wav), text], check=True)
        audio.append({"bytes": wav.read_bytes(), "path": None})
    data = {"id": list(range(len(SENTENCES))), "text": SENTENCES, "audio": audio}
    return Dataset.from_dict(data).cast_column("audio", Audio(sampling_rate=16_000))


@pytest.fixture(scope="module")
def asr_dataset_path(asr_dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("dataset") / "ds"
    asr_dataset.save_to_disk(str(path))
    return str(path)


def test_sharded_run_resumes_and_merges_in_order(
    asr_dataset: Dataset, asr_dataset_path: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    main = load_script()
    out = tmp_path / "out"
    args = ["--dataset_path", asr_dataset_path, "--output_dir", str(out), "--num_shards", "2"]
    args += ["--build_lm_from_column", "text", "--num_proc", "1", "--batch_size", "2"]

    work = out / ".transcribe"  # the shards, inside --output_dir until the merge
    main([*args, "--shard_index", "0"])
    assert shard_dir(work, 0, 2).is_dir() and not shard_dir(work, 1, 2).exists()
    assert not (out / "state.json").exists()  # shard 1 is missing: nothing to merge yet

    stale = work / "shards" / ".tmp-00001-of-00002"  # left behind by an interrupted run
    stale.mkdir()
    (stale / "half-written.arrow").write_bytes(b"junk")
    main([*args, "--shard_index", "1", "--num_proc", "2"])  # two workers: the back-end is pickled to them
    assert shard_dir(work, 1, 2).is_dir() and not stale.exists()
    assert sorted(p.name for p in shard_dir(work, 1, 2).iterdir()) == sorted(
        p.name for p in shard_dir(work, 0, 2).iterdir()
    )
    assert not (out / "state.json").exists()  # only shard 0 merges

    with caplog.at_level(logging.INFO, logger="audiolang.data.asr"):
        main([*args, "--shard_index", "0"])
    assert "shard 0 of 2 is already in" in caplog.text  # the finished shard was skipped, not rewritten

    merged = load_from_disk(str(out))  # exactly where --output_dir says
    assert not work.exists()  # the shards are removed once merged
    assert merged["id"] == list(range(len(SENTENCES)))
    assert merged.column_names == ["id", "text", "audio", "asr_text"]
    assert merged.features["audio"] == Audio(sampling_rate=16_000)
    assert all(merged["asr_text"]) and word_error_rate(SENTENCES, merged["asr_text"]) < 0.35
    # Sharding changes nothing: one pass over the whole dataset gives the same transcripts.
    asr = PocketSphinxASR(out / "lm" / "domain.arpa", out / "lm" / "domain.dict")
    assert transcribe_dataset(asr_dataset, asr)["asr_text"] == merged["asr_text"]


def test_shard_defaults_come_from_torchrun_env(
    asr_dataset_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(name, value)
    load_script()(
        ["--dataset_path", asr_dataset_path, "--output_dir", str(tmp_path), "--build_lm_from_column", "text"]
    )
    work = tmp_path / ".transcribe"
    assert load_from_disk(str(shard_dir(work, 1, 2)))["id"] == [3, 4]
    assert not shard_dir(work, 0, 2).exists()


def test_merge_only_names_the_missing_shards(tmp_path: Path) -> None:
    (tmp_path / ".transcribe" / "shards" / "00000-of-00003").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"2 of 3 shards are not finished.*\[1, 2\]"):
        load_script()(["--output_dir", str(tmp_path), "--num_shards", "3", "--merge_only"])


def test_command_line_on_a_dataset_dict_split(
    asr_dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "dict"
    DatasetDict({"test": asr_dataset}).save_to_disk(str(path))
    out = tmp_path / "out"
    args = [
        "--dataset_path",
        str(path),
        "--output_dir",
        str(out),
        "--num_proc",
        "1",
        "--build_lm_from_column",
        "text",
    ]
    with pytest.raises(ValueError, match=r"--split must name one of .*\['test'\]"):
        load_script()(args)
    # As from the command line: through the script's __main__ block and sys.argv.
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *args, "--split", "test"])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    merged = load_from_disk(str(out))  # one shard: shard 0 merges at once
    assert merged["id"] == list(range(len(SENTENCES))) and all(merged["asr_text"])


def test_transcribe_dataset_column_errors(asr_dataset: Dataset, tmp_path: Path) -> None:
    asr = PocketSphinxASR(*build_pocketsphinx_lm(SENTENCES, tmp_path))
    with pytest.raises(ValueError, match="audio_column 'speech' is not in the dataset"):
        transcribe_dataset(asr_dataset, asr, audio_column="speech")
    with pytest.raises(ValueError, match="output_column 'text' already exists"):
        transcribe_dataset(asr_dataset, asr, output_column="text")


def test_audio_column_is_decoded_at_16k_mono(asr_dataset: Dataset, tmp_path: Path) -> None:
    # The same speech stored as 22.05 kHz stereo, under an Audio feature that does not resample.
    stereo = []
    for row in asr_dataset.cast_column("audio", Audio(decode=False)):
        samples, sampling_rate = sf.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")
        buffer = io.BytesIO()
        sf.write(buffer, np.stack([samples, samples], axis=1), sampling_rate, format="WAV")
        stereo.append({"bytes": buffer.getvalue(), "path": None})
    stereo_dataset = Dataset.from_dict({"audio": stereo}).cast_column("audio", Audio())
    asr = PocketSphinxASR(*build_pocketsphinx_lm(SENTENCES, tmp_path))
    transcribed = transcribe_dataset(stereo_dataset, asr)
    assert transcribed.features["audio"] == Audio()  # the stored feature is left as it was
    assert transcribed["asr_text"] == transcribe_dataset(asr_dataset, asr)["asr_text"]


def test_transcribe_empty_dataset_still_adds_the_column(asr_dataset: Dataset) -> None:
    # A shard can be empty when there are more shards than rows.
    empty = transcribe_dataset(asr_dataset.select([]), PocketSphinxASR())
    assert len(empty) == 0 and empty.features["asr_text"] == Value("string")


def test_audio_to_array_reads_decoders_and_dicts(asr_dataset: Dataset) -> None:
    array, sampling_rate = audio_to_array(asr_dataset[0]["audio"])
    assert sampling_rate == 16_000 and array.ndim == 1 and array.size > 8_000
    stereo = np.array([[0.2, 0.4, 0.6], [0.0, 0.2, 0.2]], dtype=np.float32)
    mono, sampling_rate = audio_to_array({"array": stereo, "sampling_rate": 8_000})
    assert sampling_rate == 8_000 and np.allclose(mono, [0.1, 0.3, 0.4])
    with pytest.raises(ValueError, match="decoded datasets Audio feature"):
        audio_to_array({"bytes": b"RIFF", "path": None})


def test_output_dir_must_be_new_or_this_commands_own(asr_dataset_path: str, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"--output_dir .* is not empty \(it holds notes.txt\)"):
        load_script()(["--dataset_path", asr_dataset_path, "--output_dir", str(tmp_path)])
    with pytest.raises(ValueError, match="--output_dir is --dataset_path"):
        load_script()(["--dataset_path", asr_dataset_path, "--output_dir", asr_dataset_path])
    assert (tmp_path / "notes.txt").read_text() == "mine"
