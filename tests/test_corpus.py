"""The embedded corpus builder: determinism, schema, hold-outs, caching, atomic writes, bad input."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import librosa
import numpy as np
import pytest
import soundfile as sf

from audiolang.data import (
    SPLITS,
    CorpusConfig,
    build_corpus,
    corpus_features,
    corpus_info,
    load_corpus,
    synthesis,
)
from audiolang.data import corpus as corpus_module
from audiolang.data.acoustics import DIRECTED_SNR_DB, FAR_FIELD_SNR_DB, render
from audiolang.data.synthesis import (
    EMOTION_PROSODY,
    Prosody,
    hibari_inventory,
    sample_prosody,
    synthesize,
    voice_inventory,
)
from audiolang.data.templates import INTENTS, text_valence

SMALL = dict(pretrain=8, train=4, validation=4, test=4, speaker_test=4, test_natural=2)


def small_config(seed: int = 0) -> CorpusConfig:
    return CorpusConfig(
        preset="tiny", seed=seed, split_sizes=dict(SMALL), num_speakers=4, num_test_speakers=2
    )


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "tiny"
    return build_corpus("tiny", output_dir=path, seed=0, progress=False), path


def _decoded(example) -> np.ndarray:
    audio = example["audio"]
    samples = audio.get_all_samples()
    assert samples.sample_rate == 16_000
    return samples.data.numpy()


def test_schema_and_splits(tiny):
    dataset, path = tiny
    assert list(dataset) == list(SPLITS)
    sizes = CorpusConfig.from_preset("tiny").split_sizes
    for split in SPLITS:
        assert dataset[split].features == corpus_features()
        assert dataset[split].num_rows == sizes[split]
    row = dataset["train"][0]
    wav = _decoded(row)
    assert wav.shape[0] == 1 and wav.shape[1] > 16_000 * 0.5  # mono, longer than half a second
    assert np.isfinite(wav).all() and np.abs(wav).max() <= 1.0
    assert abs(wav.shape[1] / 16_000 - row["duration"]) < 1e-3
    for split in SPLITS:
        ds = dataset[split]
        assert all(-3.0 <= v <= 3.0 for v in ds["valence"])
        # intents only for device-directed speech; passenger talk has none (-1)
        for intent, directed in zip(ds["intent"], ds["directed"], strict=True):
            assert (intent >= 0) == bool(directed)
            assert intent < len(INTENTS)
    info = corpus_info(path)
    stats = info["statistics"]
    assert stats["utterances"] == sum(sizes.values())
    assert 0.0 < stats["asr_wer"] < 1.0 and 0.0 < stats["asr_cer"] < stats["asr_wer"] + 0.2
    assert "WER" in dataset["train"].info.description
    assert "hibari" in dataset["train"].info.description


def test_asr_text_is_real_recognition(tiny):
    dataset, _ = tiny
    ds = dataset["pretrain"]
    # Real recognition: mostly close to the manual text, but not a copy of it.
    same = sum(a == t for a, t in zip(ds["asr_text"], ds["text"], strict=True))
    assert 0 < same < ds.num_rows
    assert sum(bool(a.strip()) for a in ds["asr_text"]) >= 0.9 * ds.num_rows


@pytest.mark.parametrize("held_out", ["speaker_test", "test_natural"])
def test_held_out_speakers_unseen_elsewhere(tiny, held_out):
    dataset, _ = tiny
    unseen = set(dataset[held_out]["speaker_id"])
    seen = set().union(*(set(dataset[s]["speaker_id"]) for s in SPLITS if s != held_out))
    assert len(unseen) >= 2 and not (unseen & seen)


def test_natural_voice_share_of_the_tiny_corpus(tiny):
    """A quarter of every split (rounded) is the neural voice, all of test_natural; the statistics say so."""
    dataset, path = tiny
    config = CorpusConfig.from_preset("tiny")
    stats = corpus_info(path)["statistics"]
    for split in SPLITS:
        engines = dataset[split]["engine"]
        natural = sum(e == "hibari" for e in engines)
        expected = len(engines) if split == "test_natural" else int(0.25 * len(engines) + 0.5)
        assert natural == expected, split
        assert stats["splits"][split]["engine_share"].get("hibari", 0.0) == pytest.approx(
            natural / len(engines), abs=1e-3
        )
        hibari_speakers = {
            s for s, e in zip(dataset[split]["speaker_id"], engines, strict=True) if e == "hibari"
        }
        assert hibari_speakers <= {v.speaker_id for v in hibari_inventory()}
    total = sum(stats["per_engine"][e]["utterances"] for e in stats["per_engine"])
    assert total == config.num_utterances
    assert set(stats["per_engine"]) == set().union(*(dataset[s]["engine"] for s in SPLITS))
    shares = {e: s["share"] for e, s in stats["per_engine"].items()}
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-3)
    table = corpus_module.format_statistics(stats)
    assert "hibari" in table.split("engine")[1] and "test_natural" in table


def test_test_sentences_not_verbatim_in_training(tiny):
    dataset, _ = tiny
    training = set().union(*(set(dataset[s]["text"]) for s in ("pretrain", "train", "validation")))
    assert not set(dataset["test"]["text"]) & training
    assert not set(dataset["test_natural"]["text"]) & training
    # the same holds for the default preset's full plan (no audio needed to check it)
    plans = corpus_module.plan_corpus(CorpusConfig.from_preset("default"))
    training = {p.text for p in plans if p.split in ("pretrain", "train", "validation")}
    assert not {p.text for p in plans if p.split in ("test", "test_natural")} & training


def test_default_preset_has_enough_distinct_speakers():
    config = CorpusConfig.from_preset("default")
    plans = corpus_module.plan_corpus(config)
    speakers = {p.speaker.speaker_id for p in plans}
    engines = {p.speaker.engine for p in plans}
    assert len(speakers) >= 24 and engines == {"espeak-ng", "flite", "festival", "hibari"}
    inventory = voice_inventory() + hibari_inventory()
    assert len({v.speaker_id for v in inventory}) == len(inventory)  # ids are unique


def test_determinism_for_a_seed(tmp_path):
    a = build_corpus(config=small_config(0), output_dir=tmp_path / "a", progress=False, num_workers=2)
    b = build_corpus(config=small_config(0), output_dir=tmp_path / "b", progress=False, num_workers=1)
    c = build_corpus(config=small_config(1), output_dir=tmp_path / "c", progress=False, num_workers=2)
    for split in SPLITS:
        ra = a[split].cast_column("audio", a[split].features["audio"].__class__(decode=False))
        rb = b[split].cast_column("audio", b[split].features["audio"].__class__(decode=False))
        assert ra["text"] == rb["text"] and ra["asr_text"] == rb["asr_text"]
        assert [x["bytes"] for x in ra["audio"]] == [x["bytes"] for x in rb["audio"]]
    assert a["pretrain"]["text"] != c["pretrain"]["text"]


def test_cache_is_reused_and_mismatch_refused(tmp_path, monkeypatch):
    out = tmp_path / "c"
    build_corpus(config=small_config(0), output_dir=out, progress=False)

    def must_not_build(*args, **kwargs):
        raise AssertionError("rebuilt a cached corpus")

    monkeypatch.setattr(corpus_module, "_build_into", must_not_build)
    assert (
        build_corpus(config=small_config(0), output_dir=out, progress=False)["train"].num_rows
        == SMALL["train"]
    )
    with pytest.raises(ValueError, match="overwrite"):
        build_corpus(config=small_config(1), output_dir=out, progress=False)


def test_interrupted_build_leaves_nothing_trusted(tmp_path, monkeypatch):
    out = tmp_path / "broken"
    calls = {"n": 0}
    real = synthesis.synthesize

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 5:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-build
        return real(*args, **kwargs)

    monkeypatch.setattr(corpus_module, "synthesize", flaky)
    with pytest.raises(KeyboardInterrupt):
        build_corpus(config=small_config(0), output_dir=out, progress=False, num_workers=1)
    assert not out.exists()
    assert not list(tmp_path.glob(".broken.tmp-*"))
    # a half-written folder (no marker) is never loaded as a corpus
    out.mkdir()
    (out / "dataset_dict.json").write_text("{}")
    with pytest.raises(ValueError, match="not a complete audiolang corpus"):
        load_corpus(out)


def test_stale_temporary_of_a_dead_build_is_removed(tmp_path):
    stale = tmp_path / f".x.tmp-{2**22 + 12345}-deadbeef"  # a pid above Linux's pid_max
    stale.mkdir()
    (stale / "half.arrow").write_bytes(b"partial")
    build_corpus(config=small_config(0), output_dir=tmp_path / "x", progress=False)
    assert not stale.exists()
    assert json.loads((tmp_path / "x" / corpus_module.MARKER).read_text())["fingerprint"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(preset="huge"), "unknown corpus preset"),
        (dict(preset="tiny", num_utterances=-5), "num_utterances must be at least"),
        (dict(preset="large", num_utterances=3), "num_utterances must be at least"),
    ],
)
def test_bad_arguments(kwargs, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        build_corpus(output_dir=tmp_path / "o", progress=False, **kwargs)


def test_negative_split_size_is_refused():
    with pytest.raises(ValueError, match="positive integers"):
        CorpusConfig(split_sizes={**SMALL, "train": -1}, num_speakers=4, num_test_speakers=2).validate()


def test_unwritable_output_dir(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="not writable"):
        build_corpus(config=small_config(0), output_dir=blocker / "corpus", progress=False)


def test_missing_synthesiser_names_install_command(tmp_path, monkeypatch):
    monkeypatch.setattr(synthesis.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="apt-get install"):
        build_corpus(config=small_config(0), output_dir=tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists()


def test_emotions_are_ranges_not_settings():
    rng = np.random.default_rng(0)
    for emotion in EMOTION_PROSODY:
        draws = [sample_prosody(emotion, rng) for _ in range(50)]
        assert len({d.rate for d in draws}) == 50  # jittered per utterance
        for d in draws:
            for key, (lo, hi) in EMOTION_PROSODY[emotion].items():
                assert lo <= getattr(d, key) <= hi
    with pytest.raises(ValueError, match="unknown emotion"):
        sample_prosody("bored", rng)


@pytest.mark.parametrize("engine", ["espeak-ng", "flite", "festival", "hibari"])
def test_prosody_is_realised_in_the_audio(engine):
    """Slower rate -> longer audio; higher pitch -> higher measured F0, for every engine."""
    inventory = voice_inventory() + hibari_inventory()
    voice = next(v for v in inventory if v.engine == engine and "hts" not in v.speaker_id)
    text = "please turn on the radio"
    slow = synthesize(voice, text, Prosody(rate=0.75))
    fast = synthesize(voice, text, Prosody(rate=1.25))
    assert slow.size > 1.2 * fast.size

    def median_f0(audio: np.ndarray) -> float:
        f0, _, _ = librosa.pyin(audio, fmin=50, fmax=500, sr=16_000)
        return float(np.nanmedian(f0))

    assert median_f0(synthesize(voice, text, Prosody(pitch=1.3))) > 1.1 * median_f0(
        synthesize(voice, text, Prosody(pitch=0.8))
    )


def test_far_field_mix_is_quieter_relative_to_noise():
    speech = synthesize(voice_inventory()[0], "call mom")
    near = [render(speech, np.random.default_rng(s), far_field=False)[1].snr_db for s in range(20)]
    far = [render(speech, np.random.default_rng(s), far_field=True)[1].snr_db for s in range(20)]
    assert all(DIRECTED_SNR_DB[0] <= x <= DIRECTED_SNR_DB[1] for x in near)
    assert all(FAR_FIELD_SNR_DB[0] <= x <= FAR_FIELD_SNR_DB[1] for x in far)
    mix, _ = render(speech, np.random.default_rng(0), far_field=True)
    again, _ = render(speech, np.random.default_rng(0), far_field=True)
    assert np.array_equal(mix, again) and np.abs(mix).max() <= 0.98 + 1e-6


def test_valence_depends_on_words():
    assert text_valence("thank you so much") == pytest.approx(0.75 * 1.5)
    assert text_valence("ugh this is so annoying") == pytest.approx(0.75 * (-1.5 - 2.0) / 2)
    assert text_valence("navigate to the airport") == 0.0


def test_flac_round_trip_is_lossless_at_16_bit():
    audio = (np.random.default_rng(0).standard_normal(1600) * 0.1).astype(np.float32)
    decoded, sr = sf.read(io.BytesIO(synthesis.wav_bytes(audio)), dtype="float32")
    assert sr == 16_000 and np.abs(decoded - audio).max() < 1.0 / 2**15 + 1e-7


def test_cli_builds_and_prints_statistics(tmp_path):
    script = os.path.join(os.path.dirname(__file__), "..", "run_scripts", "run_build_corpus.py")
    out = tmp_path / "cli"
    proc = subprocess.run(
        [sys.executable, script, "--preset", "tiny", "--num_utterances", "24", "--output_dir", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "pretrain" in proc.stdout and "WER" in proc.stdout
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["utterances"] == CorpusConfig.from_preset("tiny", num_utterances=24).num_utterances
    assert load_corpus(out)["test"].num_rows == 4
    bad = subprocess.run(
        [sys.executable, script, "--preset", "nope"], capture_output=True, text=True, check=False
    )
    assert bad.returncode != 0 and "unknown corpus preset" in bad.stderr


def test_overwrite_replaces_only_a_corpus(tmp_path):
    precious = tmp_path / "mine"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(ValueError, match="holds no audiolang corpus.*even with overwrite"):
        build_corpus(config=small_config(0), output_dir=precious, progress=False, overwrite=True)
    assert (precious / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in precious.iterdir()) == ["thesis.tex"]


def test_marker_records_the_build_and_damage_is_refused_with_the_fix(tmp_path):
    out = tmp_path / "c"
    build_corpus(config=small_config(0), output_dir=out, progress=False)
    marker_path = out / corpus_module.MARKER
    assert oct(os.stat(marker_path).st_mode & 0o777) == oct(0o644)  # other users can read the shared cache
    files = json.loads(marker_path.read_text())["files"]
    assert files == {
        p.relative_to(out).as_posix(): p.stat().st_size
        for p in out.rglob("*")
        if p.is_file() and p != marker_path
    }
    arrow = next(name for name in files if name.startswith("train/") and name.endswith(".arrow"))
    with open(out / arrow, "r+b") as f:  # a copy that stopped half-way
        f.truncate(files[arrow] // 2)
    with pytest.raises(
        ValueError,
        # A configuration that no preset gives: the hint rebuilds it from the one the marker records.
        match=rf"damaged \({arrow} has \d+ bytes, {files[arrow]} when built\): rebuild it with "
        rf"`build_corpus\(config=CorpusConfig\(\*\*corpus_info\('{out}'\)\['config'\]\), output_dir='{out}', "
        r"overwrite=True\)`",
    ):
        load_corpus(out)
    with pytest.raises(ValueError, match="damaged"):  # the cache is not trusted either
        build_corpus(config=small_config(0), output_dir=out, progress=False)
    (out / arrow).unlink()
    with pytest.raises(ValueError, match=rf"{arrow} is missing"):
        load_corpus(out)
    rebuilt = build_corpus(config=small_config(0), output_dir=out, progress=False, overwrite=True)
    assert rebuilt["train"].num_rows == SMALL["train"]


class _BatchSizeASR:
    """A recogniser that answers with the size of the batch it was given, to show how rows were transcribed."""

    name = "batch-size"

    def transcribe(self, audio, sampling_rate):
        return [f"batch of {len(audio)}"] * len(audio)


def test_labelled_splits_are_transcribed_by_their_own_recogniser_in_batches(tmp_path, monkeypatch):
    """`labelled_asr` transcribes every split but pretrain (which keeps pocketsphinx and its domain LM), a chunk of
    utterances per recogniser call; the recogniser is part of the fingerprint and of the card."""
    loaded = []
    monkeypatch.setattr(
        corpus_module, "load_asr", lambda spec, **kwargs: loaded.append(spec) or _BatchSizeASR()
    )
    config = CorpusConfig(**{**small_config().__dict__, "labelled_asr": "fake-recogniser"})
    assert config.fingerprint() != small_config().fingerprint()
    # The presets keep one recogniser, and so the fingerprints of the corpora built before the field existed.
    assert CorpusConfig.from_preset("default").labelled_asr is None
    assert CorpusConfig.from_preset("default", seed=0).fingerprint() == "670fdda033f5"

    dataset = build_corpus(config=config, output_dir=tmp_path / "c", num_workers=1, progress=False)
    assert loaded == ["fake-recogniser"]
    assert not any(text.startswith("batch of") for text in dataset["pretrain"]["asr_text"])
    # The 18 labelled utterances (4 per split, test_natural 2), in plan order: one call of 16, one of 2.
    labelled = [text for split in SPLITS if split != "pretrain" for text in dataset[split]["asr_text"]]
    assert sorted(labelled) == ["batch of 16"] * 16 + ["batch of 2"] * 2
    assert "fake-recogniser for the labelled splits" in corpus_info(tmp_path / "c")["description"]


def test_render_chunks_keep_order_size_and_one_recogniser_each():
    plans = corpus_module.plan_corpus(small_config())
    chunks = corpus_module.render_chunks(plans, size=3)
    assert [plan for chunk in chunks for plan in chunk] == plans
    assert all(1 <= len(chunk) <= 3 for chunk in chunks)
    assert all(len({plan.split == "pretrain" for plan in chunk}) == 1 for chunk in chunks)
    # Only a change of recogniser or a full chunk starts a new one.
    for first, second in zip(chunks, chunks[1:], strict=False):
        assert len(first) == 3 or (first[0].split == "pretrain") != (second[0].split == "pretrain")
