"""The embedded in-car voice-assistant corpus: built offline, deterministic for a seed, cached.

DSCLAP's setting is an in-vehicle assistant with lots of raw audio, an imperfect recogniser and few
labels. No such corpus can be downloaded here, so this module builds one:

1. a seeded *plan* (main process): for every utterance, its split, speaker, sentence (templates.py),
   emotion and prosody (synthesis.py), directedness and a render seed;
2. a domain language model for the recogniser, built from the ``pretrain`` split's manual text only,
   so that held-out test sentences cannot leak into recognition;
3. *rendering* (a process pool, all cores): synthesis, cabin acoustics (acoustics.py) and real offline
   recognition of every utterance, giving ``asr_text`` with real errors: the ``pretrain`` split through
   ``CorpusConfig.asr`` (pocketsphinx with that domain LM by default), the labelled splits through
   ``CorpusConfig.labelled_asr`` when set (e.g. Whisper tiny.en, the recogniser the ``audio-text-classification``
   pipeline runs at inference, so that a classifier trains and is tested on the transcripts it will get), in
   batches;
4. an atomic save: everything is written into a temporary sibling folder that is renamed into place
   only when complete, so an interrupted build never leaves a folder that a later run trusts.

The result is a ``datasets.DatasetDict`` with splits ``pretrain`` (the bulk, meant to be used without
labels), ``train``, ``validation``, ``test`` (held-out templates and slot values), ``speaker_test``
(spoken only by speakers unseen in every other split) and ``test_natural`` (held-out templates and slot values
spoken only by pseudo-speakers of the neural voice that no other split has), saved with ``save_to_disk``.

Voices: the formant and diphone synthesisers (espeak-ng, flite, festival) and the neural voice ``hibari``
(synthesis.py). ``CorpusConfig.natural_voice_share`` of the speakers of every speaker pool and of the utterances
of every split but ``test_natural`` (which is all hibari) are hibari pseudo-speakers; the rest are the others.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..cache import cache_dir
from ..metrics.asr import character_error_rate, word_error_rate
from .acoustics import render
from .asr import ASRBackend, PocketSphinxASR, build_pocketsphinx_lm, load_asr
from .synthesis import (
    SAMPLING_RATE,
    Prosody,
    Voice,
    check_engines,
    hibari_inventory,
    sample_prosody,
    synthesize,
    voice_inventory,
    wav_bytes,
)
from .templates import DIRECTED_NAMES, EMOTION_VALENCE, EMOTIONS, INTENTS, sample_sentence, text_valence

logger = logging.getLogger(__name__)

# 2: the neural voice (hibari) beside the formant and diphone synthesisers, and the test_natural split.
CORPUS_VERSION = "2"
SPLITS: tuple[str, ...] = ("pretrain", "train", "validation", "test", "speaker_test", "test_natural")
TRAINING_SPLITS: tuple[str, ...] = ("pretrain", "train", "validation")
# Splits whose sentences never occur in a training split, and splits whose speakers never do.
HELD_OUT_TEXT_SPLITS: tuple[str, ...] = ("test", "test_natural")
HELD_OUT_SPEAKER_SPLITS: tuple[str, ...] = ("speaker_test", "test_natural")
# A configuration may leave these out of split_sizes (or give 0): the split is then not built. So configurations
# written before test_natural existed still describe a corpus.
OPTIONAL_SPLITS: tuple[str, ...] = ("test_natural",)
MARKER = "audiolang_corpus.json"
# Share of utterances whose distance does not follow their label (a driver's aside to a passenger, a
# passenger leaning in to give a command), so that the acoustics alone cannot solve directedness.
FLIPPED_FIELD_RATE = 0.15

# Split sizes and speaker counts. ``large`` is scaled by ``num_utterances`` (default 20,000).
# The labelled splits' recogniser per preset (None: ``CorpusConfig.asr``, as for ``pretrain``). Every preset keeps
# pocketsphinx: Whisper tiny.en gives the labelled splits better transcripts (README, "ASR back-ends") but, on 2
# cores, the default corpus then took 25 min 40 s to build (16 of them beside the test suite) against 10 min, more
# than `make demo` can spend;
# `run_build_corpus.py --labelled_asr whisper-tiny.en` builds that corpus.
PRESET_LABELLED_ASR: dict[str, str | None] = {"tiny": None, "default": None, "large": None}
# Utterances a rendering worker synthesises before it transcribes them in one recogniser call (Whisper decodes a
# batch at a time; with clips shorter than its window a transcript does not depend on the rest of the batch).
RENDER_CHUNK = 16
CORPUS_PRESETS: dict[str, dict[str, int]] = {
    "tiny": dict(
        pretrain=48,
        train=24,
        validation=12,
        test=12,
        speaker_test=16,
        test_natural=8,
        speakers=8,
        test_speakers=4,
        natural_test_speakers=2,
    ),
    "default": dict(
        pretrain=2600,
        train=800,
        validation=200,
        test=400,
        speaker_test=240,
        test_natural=400,
        speakers=30,
        test_speakers=6,
        natural_test_speakers=4,
    ),
    "large": dict(
        pretrain=14000,
        train=3000,
        validation=1000,
        test=1200,
        speaker_test=800,
        test_natural=1200,
        speakers=60,
        test_speakers=10,
        natural_test_speakers=6,
    ),
}


def natural_count(total: int, share: float, both_kinds: bool = False) -> int:
    """How many of ``total`` speakers or utterances are the neural voice's: ``share`` of them rounded half up;
    with ``both_kinds``, at least one of each kind where the share asks for both and there are two to share."""
    count = int(np.floor(share * total + 0.5))
    if both_kinds and 0.0 < share < 1.0 and total >= 2:
        count = min(max(count, 1), total - 1)
    return count


@dataclass(frozen=True)
class CorpusConfig:
    """Everything that determines a corpus; its fingerprint names the cache entry."""

    preset: str = "default"
    seed: int = 0
    split_sizes: dict[str, int] = field(default_factory=dict)
    num_speakers: int = 30
    num_test_speakers: int = 6
    directed_ratio: float = 0.6
    asr: str = "pocketsphinx"
    # Share of the neural voice (hibari pseudo-speakers) among the speakers of the training pool and of
    # speaker_test, and among the utterances of every split but test_natural (0 gives the robotic voices only).
    natural_voice_share: float = 0.25
    # The hibari pseudo-speakers of test_natural, unseen in every other split.
    num_natural_test_speakers: int = 4
    version: str = CORPUS_VERSION
    # The recogniser of every split but pretrain (None: ``asr``); see PRESET_LABELLED_ASR.
    labelled_asr: str | None = None

    @classmethod
    def from_preset(
        cls, preset: str = "default", seed: int = 0, num_utterances: int | None = None, **overrides: Any
    ) -> CorpusConfig:
        """A preset's configuration; ``num_utterances`` rescales its split sizes to that total."""
        if preset not in CORPUS_PRESETS:
            raise ValueError(f"unknown corpus preset {preset!r}; choose one of {sorted(CORPUS_PRESETS)}")
        p = CORPUS_PRESETS[preset]
        sizes = {s: p[s] for s in SPLITS}
        if num_utterances is not None:
            if num_utterances < len(SPLITS) * 4:
                raise ValueError(
                    f"num_utterances must be at least {len(SPLITS) * 4} (4 per split), got {num_utterances}"
                )
            total = sum(sizes.values())
            sizes = {s: max(4, round(n * num_utterances / total)) for s, n in sizes.items()}
        config = cls(
            preset=preset,
            seed=seed,
            split_sizes=sizes,
            num_speakers=p["speakers"],
            num_test_speakers=p["test_speakers"],
            num_natural_test_speakers=p["natural_test_speakers"],
            labelled_asr=PRESET_LABELLED_ASR.get(preset),
        )
        config = replace(config, **overrides)
        config.validate()
        return config

    def validate(self) -> None:
        required = [s for s in SPLITS if s not in OPTIONAL_SPLITS]
        if not set(required) <= set(self.split_sizes) <= set(SPLITS):
            raise ValueError(
                f"split_sizes must give a size for each of {tuple(required)} (and may give one for "
                f"{OPTIONAL_SPLITS}), got {sorted(self.split_sizes)}"
            )
        bad = {
            s: n
            for s, n in self.split_sizes.items()
            if not isinstance(n, int) or n < (0 if s in OPTIONAL_SPLITS else 1)
        }
        if bad:
            raise ValueError(f"split sizes must be positive integers, got {bad}")
        if self.num_speakers < 2 or self.num_test_speakers < 2:
            raise ValueError("num_speakers and num_test_speakers must each be at least 2")
        if not 0.0 <= self.natural_voice_share <= 1.0:
            raise ValueError(f"natural_voice_share must be in [0, 1], got {self.natural_voice_share}")
        if self.split_sizes.get("test_natural", 0) and self.num_natural_test_speakers < 1:
            raise ValueError("num_natural_test_speakers must be at least 1 when test_natural has utterances")
        natural = self.natural_speaker_counts()
        synthetic = self.num_speakers + self.num_test_speakers - natural[0] - natural[1]
        if synthetic > len(voice_inventory()):
            raise ValueError(
                f"the configuration needs {synthetic} espeak-ng/flite/festival voices; {len(voice_inventory())} "
                "are available"
            )
        if sum(natural) > len(hibari_inventory()):
            raise ValueError(
                f"the configuration needs {sum(natural)} hibari pseudo-speakers (training pool, speaker_test, "
                f"test_natural); {len(hibari_inventory())} are available"
            )
        if not 0.0 < self.directed_ratio < 1.0:
            raise ValueError(f"directed_ratio must be in (0, 1), got {self.directed_ratio}")

    def natural_speaker_counts(self) -> tuple[int, int, int]:
        """hibari pseudo-speakers among the training pool's speakers, among speaker_test's, and test_natural's."""
        share = self.natural_voice_share
        return (
            natural_count(self.num_speakers, share, both_kinds=True),
            natural_count(self.num_test_speakers, share, both_kinds=True),
            self.num_natural_test_speakers if self.split_sizes.get("test_natural", 0) else 0,
        )

    def fingerprint(self) -> str:
        fields = asdict(self)
        if fields["labelled_asr"] is None:
            del fields["labelled_asr"]  # a corpus built before the field existed keeps its fingerprint
        blob = json.dumps(fields, sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:12]

    @property
    def num_utterances(self) -> int:
        return sum(self.split_sizes.values())


@dataclass(frozen=True)
class UtterancePlan:
    id: str
    split: str
    text: str
    intent: int  # index into INTENTS, -1 for non-directed talk
    directed: int
    emotion: int
    valence: float
    speaker: Voice
    prosody: Prosody
    far_field: bool
    template_id: str
    seed: int


def _hold_out(pool: list[Voice], count: int) -> tuple[list[Voice], list[Voice]]:
    """(kept, held out): ``count`` voices spread evenly through ``pool`` are held out, so that they span it."""
    if count <= 0:
        return list(pool), []
    step = len(pool) / count
    held = {int(i * step + step / 2) for i in range(count)}
    return [v for i, v in enumerate(pool) if i not in held], [v for i, v in enumerate(pool) if i in held]


@dataclass(frozen=True)
class SpeakerPools:
    """The voices of each speaker pool, the robotic ones (espeak-ng, flite, festival) and the natural ones (hibari)
    apart: ``seen`` speaks pretrain, train, validation and test; ``unseen`` only speaker_test; ``natural_test``
    only test_natural."""

    seen: tuple[list[Voice], list[Voice]]
    unseen: tuple[list[Voice], list[Voice]]
    natural_test: list[Voice]

    def for_split(self, split: str) -> tuple[list[Voice], list[Voice]]:
        """(robotic, natural) voices of a split."""
        if split == "test_natural":
            return [], self.natural_test
        return self.unseen if split == "speaker_test" else self.seen


def select_speakers(config: CorpusConfig) -> SpeakerPools:
    """The voices of every pool. Robotic voices: the first ones of ``voice_inventory()``, those of speaker_test
    spread evenly through that prefix so that they span engines too. Natural voices: the first ones of
    ``hibari_inventory()``, those of speaker_test and test_natural spread evenly through that prefix."""
    seen_natural, unseen_natural, natural_test = config.natural_speaker_counts()
    seen_robotic = config.num_speakers - seen_natural
    unseen_robotic = config.num_test_speakers - unseen_natural
    robotic, robotic_unseen = _hold_out(voice_inventory()[: seen_robotic + unseen_robotic], unseen_robotic)
    natural, natural_held = _hold_out(
        hibari_inventory()[: seen_natural + unseen_natural + natural_test], unseen_natural + natural_test
    )
    return SpeakerPools(
        seen=(robotic, natural),
        unseen=(robotic_unseen, natural_held[:unseen_natural]),
        natural_test=natural_held[unseen_natural:],
    )


def _natural_rows(
    config: CorpusConfig, split: str, size: int, natural_speakers: int, rng: np.random.Generator
) -> set[int]:
    """Which rows of a split the neural voice speaks: a seeded set of ``natural_voice_share`` of them (all of
    test_natural's; none where the split's pool has no natural voice, all where it has only natural ones)."""
    if split == "test_natural":
        return set(range(size))
    count = natural_count(size, config.natural_voice_share) if natural_speakers else 0
    return {int(i) for i in rng.choice(size, size=count, replace=False)}


def check_held_out(plans: Sequence[UtterancePlan]) -> None:
    """Raise if a sentence of a held-out-text split occurs in a training split, or a speaker of a held-out-speaker
    split speaks in any other split: the build-time guarantee of the test splits."""
    training_texts = {p.text for p in plans if p.split in TRAINING_SPLITS}
    for split in HELD_OUT_TEXT_SPLITS:
        leaked = sorted({p.text for p in plans if p.split == split} & training_texts)
        if leaked:
            raise RuntimeError(f"{len(leaked)} {split} sentence(s) occur in training, e.g. {leaked[0]!r}")
    for split in HELD_OUT_SPEAKER_SPLITS:
        others = {p.speaker.speaker_id for p in plans if p.split != split}
        leaked = sorted({p.speaker.speaker_id for p in plans if p.split == split} & others)
        if leaked:
            raise RuntimeError(f"{split} speaker(s) {leaked} also speak in another split")


def plan_corpus(config: CorpusConfig) -> list[UtterancePlan]:
    """Decide every utterance of the corpus from the seed alone (no audio yet)."""
    rng = np.random.default_rng([config.seed, 0xA0D1])
    # A stream of its own for which rows the neural voice speaks: with natural_voice_share 0, every other draw
    # is what it was before the neural voice existed.
    voice_rng = np.random.default_rng([config.seed, 0x41B1])
    pools = select_speakers(config)
    plans: list[UtterancePlan] = []
    training_texts: set[str] = set()
    for split in SPLITS:  # the held-out splits come after every training split, so collisions can be rejected
        size = config.split_sizes.get(split, 0)
        robotic, natural = pools.for_split(split)
        natural_rows = _natural_rows(config, split, size, len(natural), voice_rng)
        if len(natural_rows) < size and not robotic:
            natural_rows = set(range(size))
        for i in range(size):
            directed = bool(rng.random() < config.directed_ratio)
            emotion = EMOTIONS[int(rng.integers(len(EMOTIONS)))]
            held_out = split in HELD_OUT_TEXT_SPLITS
            for _ in range(100):
                sentence = sample_sentence(rng, emotion, directed, held_out=held_out)
                if not held_out or sentence.text not in training_texts:
                    break
            else:  # pragma: no cover - the held-out pools make this practically impossible
                raise RuntimeError("could not draw a test sentence unseen in training")
            if split in TRAINING_SPLITS:
                training_texts.add(sentence.text)
            valence = EMOTION_VALENCE[emotion] + text_valence(sentence.text) + rng.normal(0.0, 0.25)
            far_field = (not directed) != bool(rng.random() < FLIPPED_FIELD_RATE)
            speakers = natural if i in natural_rows else robotic
            plans.append(
                UtterancePlan(
                    id=f"{split}-{i:06d}",
                    split=split,
                    text=sentence.text,
                    intent=INTENTS.index(sentence.intent) if sentence.intent else -1,
                    directed=int(directed),
                    emotion=EMOTIONS.index(emotion),
                    valence=round(float(np.clip(valence, -3.0, 3.0)), 3),
                    speaker=speakers[int(rng.integers(len(speakers)))],
                    prosody=sample_prosody(emotion, rng),
                    far_field=far_field,
                    template_id=sentence.template_id,
                    seed=int(rng.integers(2**62)),
                )
            )
    check_held_out(plans)
    return plans


# --- rendering (runs in worker processes) ---------------------------------------------------------

# The recognisers of a worker: for the pretrain split, and for the labelled splits.
_WORKER_ASR: dict[str, ASRBackend] = {}


def _init_worker(asr: dict[str, ASRBackend]) -> None:
    global _WORKER_ASR
    _WORKER_ASR = asr
    if len(asr) > 1 or any(not isinstance(a, PocketSphinxASR) for a in asr.values()):
        # Whisper in a worker: one thread each, the pool gives the parallelism.
        import torch

        torch.set_num_threads(1)


def _recogniser_kind(split: str) -> str:
    return "pretrain" if split == "pretrain" else "labelled"


def _render_chunk(plans: Sequence[UtterancePlan]) -> list[dict[str, Any]]:
    """Synthesise, render and transcribe utterances of one recogniser kind (`_recogniser_kind`), the transcription
    in one call."""
    assert _WORKER_ASR, "worker not initialised"
    kinds = {_recogniser_kind(plan.split) for plan in plans}
    assert len(kinds) == 1, f"a chunk mixes recognisers: {kinds}"
    rendered, clips = [], []
    for plan in plans:
        rng = np.random.default_rng(plan.seed)
        # The engine's own random stream (hibari's noise component) is seeded apart from the cabin's.
        speech = synthesize(plan.speaker, plan.text, plan.prosody, seed=plan.seed ^ 0x5EED)
        audio, info = render(speech, rng, far_field=plan.far_field, gain=plan.prosody.amplitude)
        clips.append(audio)
        rendered.append(
            {
                "audio": {"bytes": wav_bytes(audio), "path": None},
                "duration": round(audio.size / SAMPLING_RATE, 4),
                "snr_db": round(info.snr_db, 2),
                "rt60_s": round(info.rt60_s, 3),
            }
        )
    for row, text in zip(rendered, _WORKER_ASR[kinds.pop()].transcribe(clips, SAMPLING_RATE), strict=True):
        row["asr_text"] = text
    return rendered


def render_chunks(plans: Sequence[UtterancePlan], size: int = RENDER_CHUNK) -> list[list[UtterancePlan]]:
    """`plans` in order, cut into chunks of at most `size` utterances that share a recogniser."""
    chunks: list[list[UtterancePlan]] = []
    for plan in plans:
        if (
            chunks
            and len(chunks[-1]) < size
            and (_recogniser_kind(chunks[-1][0].split) == _recogniser_kind(plan.split))
        ):
            chunks[-1].append(plan)
        else:
            chunks.append([plan])
    return chunks


def _rows(plans: Sequence[UtterancePlan], rendered: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    rows: dict[str, list[Any]] = {}
    for plan, out in zip(plans, rendered, strict=True):
        row = {
            "id": plan.id,
            "audio": out["audio"],
            "text": plan.text,
            "asr_text": out["asr_text"],
            "intent": plan.intent,
            "directed": plan.directed,
            "emotion": plan.emotion,
            "valence": plan.valence,
            "speaker_id": plan.speaker.speaker_id,
            "gender": plan.speaker.gender,
            "engine": plan.speaker.engine,
            "far_field": plan.far_field,
            "snr_db": out["snr_db"],
            "rt60_s": out["rt60_s"],
            "duration": out["duration"],
            "template_id": plan.template_id,
        }
        for k, v in row.items():
            rows.setdefault(k, []).append(v)
    return rows


def corpus_features():
    """The ``datasets.Features`` of every split."""
    from datasets import Audio, ClassLabel, Features, Value

    return Features(
        {
            "id": Value("string"),
            "audio": Audio(sampling_rate=SAMPLING_RATE),
            "text": Value("string"),
            "asr_text": Value("string"),
            "intent": ClassLabel(names=list(INTENTS)),
            "directed": ClassLabel(names=list(DIRECTED_NAMES)),
            "emotion": ClassLabel(names=list(EMOTIONS)),
            "valence": Value("float32"),
            "speaker_id": Value("string"),
            "gender": Value("string"),
            "engine": Value("string"),
            "far_field": Value("bool"),
            "snr_db": Value("float32"),
            "rt60_s": Value("float32"),
            "duration": Value("float32"),
            "template_id": Value("string"),
        }
    )


# --- cache and atomic write -----------------------------------------------------------------------


def default_cache_dir() -> Path:
    """Where ``build_corpus`` caches corpora: ``$AUDIOLANG_CACHE/corpus`` (see ``audiolang.cache``)."""
    return cache_dir("corpus")


def corpus_dir(config: CorpusConfig, output_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where ``build_corpus`` keeps a corpus: ``output_dir``, or its cache entry named by the fingerprint."""
    if output_dir is not None:
        return Path(output_dir)
    return default_cache_dir() / f"{config.preset}-seed{config.seed}-{config.fingerprint()}"


def _check_writable(path: Path) -> None:
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(
            f"output_dir {str(path)!r} is not writable (nearest existing folder: {str(parent)!r})"
        )


def _read_marker(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads((path / MARKER).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None


def _remove_stale_temporaries(output_dir: Path) -> None:
    """Remove temporary folders left by interrupted builds of this output folder (dead owner pid)."""
    for tmp in output_dir.parent.glob(f".{output_dir.name}.tmp-*"):
        try:
            pid = int(tmp.name.rsplit("-", 2)[1])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(tmp, ignore_errors=True)
        except (ValueError, IndexError, PermissionError):
            continue


def _damage(path: Path, marker: dict[str, Any]) -> list[str]:
    """How the files of a corpus folder differ from what its complete build wrote (the marker's file list)."""
    problems = []
    for name, size in marker["files"].items():
        file = path / name
        if not file.is_file():
            problems.append(f"{name} is missing")
        elif file.stat().st_size != size:
            problems.append(f"{name} has {file.stat().st_size} bytes, {size} when built")
    return problems


def rebuild_command(path: str | os.PathLike[str], marker: dict[str, Any]) -> str:
    """The command that builds again the corpus a marker describes, with the arguments it was built with (preset,
    seed, size, recogniser), so that following a hint rebuilds this corpus and not the default one."""
    recorded = marker.get("config") or {}
    preset, seed, asr = recorded.get("preset", "default"), recorded.get("seed", 0), recorded.get("asr")
    labelled_asr = recorded.get("labelled_asr")
    sizes = recorded.get("split_sizes") or {}
    for num_utterances in (None, sum(sizes.values()) or None):
        try:
            config = CorpusConfig.from_preset(
                preset, seed=seed, num_utterances=num_utterances, asr=asr, labelled_asr=labelled_asr
            )
        except (TypeError, ValueError):
            break
        if config.fingerprint() == marker.get("fingerprint"):
            return (
                f"`python run_scripts/run_build_corpus.py --output_dir {path} --preset {preset} --seed {seed}"
                + (f" --num_utterances {num_utterances}" if num_utterances else "")
                + (f" --asr {asr}" if asr != CorpusConfig.asr else "")
                + (
                    f" --labelled_asr {labelled_asr or 'none'}"
                    if labelled_asr != PRESET_LABELLED_ASR.get(preset)
                    else ""
                )
                + " --overwrite`"
            )
    # A configuration that the command line cannot give (built from a full CorpusConfig).
    return (
        f"`build_corpus(config=CorpusConfig(**corpus_info({str(path)!r})['config']), output_dir={str(path)!r}, "
        "overwrite=True)`"
    )


def _foreign_files(path: Path, marker: dict[str, Any]) -> list[str]:
    """What a corpus folder holds that its build did not write (nor `datasets` caches of its splits): the user's
    own files, which replacing the corpus must not delete. Top-level names, folders with a trailing `/`."""
    built = {*marker["files"], MARKER}
    built_dirs = {parent.as_posix() for name in built for parent in Path(name).parents}
    foreign = set()
    for item in path.rglob("*"):
        relative = item.relative_to(path)
        if relative.as_posix() in built or relative.as_posix() in built_dirs or _is_datasets_cache(item):
            continue
        top = relative.parts[0]
        foreign.add(f"{top}/" if (path / top).is_dir() else top)
    return sorted(foreign)


def _is_datasets_cache(file: Path) -> bool:
    """`datasets`' cache files beside a split's data (`Dataset.map` over the loaded corpus writes them)."""
    return file.is_file() and file.name.startswith("cache-") and file.suffix == ".arrow"


def _remove_built(path: Path, marker: dict[str, Any]) -> None:
    """Delete what a corpus build wrote in `path` (the marker's files, the marker, `datasets` caches), then the
    folders left empty; anything else stays."""
    for name in marker["files"]:
        (path / name).unlink(missing_ok=True)
    for cache in [f for f in path.rglob("cache-*.arrow") if _is_datasets_cache(f)]:
        cache.unlink()
    (path / MARKER).unlink(missing_ok=True)
    for folder in sorted(
        (d for d in path.rglob("*") if d.is_dir()), key=lambda d: len(d.parts), reverse=True
    ):
        if not any(folder.iterdir()):
            folder.rmdir()


def load_corpus(path: str | os.PathLike[str]):
    """Load a corpus written by ``build_corpus`` (a ``DatasetDict``); refuses incomplete or damaged folders: one
    without the marker, or with a file missing or of another size than the build wrote."""
    from datasets import load_from_disk

    path = Path(path)
    marker = _read_marker(path)
    if marker is None:
        raise ValueError(
            f"{str(path)!r} is not a complete audiolang corpus (no {MARKER}); build one with "
            "`python run_scripts/run_build_corpus.py --output_dir ...`"
        )
    if "files" not in marker:
        logger.warning("%s predates file lists in %s: its files cannot be checked for damage", path, MARKER)
    elif problems := _damage(path, marker):
        raise ValueError(
            f"the corpus at {str(path)!r} is damaged ({'; '.join(problems[:5])}"
            f"{'; ...' if len(problems) > 5 else ''}): rebuild it with {rebuild_command(path, marker)}."
        )
    return load_from_disk(str(path))


def corpus_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The statistics and configuration stored beside a built corpus."""
    info = _read_marker(Path(path))
    if info is None:
        raise ValueError(f"{str(path)!r} is not a complete audiolang corpus (no {MARKER})")
    return info


def format_statistics(stats: dict[str, Any]) -> str:
    """Plain-text tables (``corpus_info(path)["statistics"]``): split sizes, speakers, hours and ASR error rates, then
    the same per synthesis engine with its share of the utterances (corpora built before the neural voice have no
    engine table)."""
    lines = [f"{'split':<13}{'utts':>7}{'spk':>5}{'hours':>8}{'directed':>10}{'WER':>8}{'CER':>8}"]
    for name, s in stats["splits"].items():
        lines.append(
            f"{name:<13}{s['utterances']:>7}{s['speakers']:>5}{s['hours']:>8.3f}{s['directed_share']:>10.2f}"
            f"{s['asr_wer']:>8.1%}{s['asr_cer']:>8.1%}"
        )
    lines.append(
        f"{'all':<13}{stats['utterances']:>7}{stats['speakers']:>5}{stats['hours']:>8.3f}{'':>10}"
        f"{stats['asr_wer']:>8.1%}{stats['asr_cer']:>8.1%}"
    )
    if "per_engine" in stats:
        lines += ["", f"{'engine':<13}{'utts':>7}{'spk':>5}{'hours':>8}{'share':>10}{'WER':>8}{'CER':>8}"]
        for name, e in stats["per_engine"].items():
            lines.append(
                f"{name:<13}{e['utterances']:>7}{e['speakers']:>5}{e['hours']:>8.3f}{e['share']:>10.1%}"
                f"{e['asr_wer']:>8.1%}{e['asr_cer']:>8.1%}"
            )
    return "\n".join(lines)


# The columns `corpus_statistics` reads: a dataset that has them can be described like the corpus.
STATISTICS_COLUMNS = ("text", "asr_text", "speaker_id", "duration", "directed", "engine")


def _engine_statistics(rows: dict[str, list[Any]], total: int) -> dict[str, dict[str, Any]]:
    """Per synthesis engine of ``rows`` (columns of STATISTICS_COLUMNS): its share of ``total`` utterances,
    speakers, hours and ASR error rates."""
    engines: dict[str, dict[str, Any]] = {}
    for engine in sorted(set(rows["engine"])):
        idx = [i for i, e in enumerate(rows["engine"]) if e == engine]
        text, hyp = [rows["text"][i] for i in idx], [rows["asr_text"][i] for i in idx]
        engines[engine] = {
            "utterances": len(idx),
            "share": round(len(idx) / total, 4),
            "speakers": len({rows["speaker_id"][i] for i in idx}),
            "hours": round(float(np.sum([rows["duration"][i] for i in idx])) / 3600, 3),
            "asr_wer": round(word_error_rate(text, hyp), 4),
            "asr_cer": round(character_error_rate(text, hyp), 4),
        }
    return engines


def corpus_statistics(dataset) -> dict[str, Any]:
    """Per-split sizes, speakers, hours, emotion/directed balance, and ASR WER/CER against ``text``; per split the
    share of each synthesis engine (``engine_share``), and over every split the same figures per engine
    (``per_engine``)."""
    stats: dict[str, Any] = {"splits": {}}
    pooled: dict[str, list[Any]] = {column: [] for column in STATISTICS_COLUMNS}
    for split in dataset:
        cols = dataset[split].select_columns(list(STATISTICS_COLUMNS))
        rows = {column: list(cols[column]) for column in STATISTICS_COLUMNS}
        text, hyp = rows["text"], rows["asr_text"]
        for column, values in rows.items():
            pooled[column] += values
        stats["splits"][split] = {
            "utterances": len(text),
            "speakers": len(set(rows["speaker_id"])),
            "hours": round(float(np.sum(rows["duration"])) / 3600, 3),
            "directed_share": round(float(np.mean(rows["directed"])), 3),
            "engines": sorted(set(rows["engine"])),
            "engine_share": {e: round(n / len(text), 4) for e, n in sorted(Counter(rows["engine"]).items())},
            "asr_wer": round(word_error_rate(text, hyp), 4),
            "asr_cer": round(character_error_rate(text, hyp), 4),
        }
    stats["utterances"] = len(pooled["text"])
    stats["speakers"] = len(set(pooled["speaker_id"]))
    stats["hours"] = round(sum(s["hours"] for s in stats["splits"].values()), 3)
    stats["asr_wer"] = round(word_error_rate(pooled["text"], pooled["asr_text"]), 4)
    stats["asr_cer"] = round(character_error_rate(pooled["text"], pooled["asr_text"]), 4)
    stats["per_engine"] = _engine_statistics(pooled, len(pooled["text"]))
    return stats


def build_corpus(
    preset: str = "default",
    output_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    num_utterances: int | None = None,
    num_workers: int | None = None,
    overwrite: bool = False,
    config: CorpusConfig | None = None,
    asr: ASRBackend | None = None,
    progress: bool = True,
):
    """Build (or load from cache) the embedded in-car corpus and return it as a ``DatasetDict``.

    Args:
        preset: ``tiny`` (under a minute, for tests), ``default`` (several thousand utterances) or
            ``large``; ``num_utterances`` rescales any preset to that total.
        output_dir: where to save it; defaults to ``$AUDIOLANG_CACHE/corpus/<preset>-<fingerprint>``
            (``~/.cache/audiolang`` when unset). A folder that already holds the same corpus (same
            fingerprint) is loaded instead of rebuilt (and refused if a file is damaged); one holding another
            corpus is an error unless ``overwrite``; a non-empty folder that holds no corpus is always an error.
        overwrite: replace a corpus (another one, or a damaged copy of this one) in ``output_dir``.
        seed: same seed, same audio and text, on any machine with the same synthesiser versions.
        num_workers: rendering processes; defaults to every core.
        config: a full ``CorpusConfig`` (overrides preset/seed/num_utterances).
        asr: a ready ASR back-end; by default pocketsphinx with a domain language model built from the
            ``pretrain`` split's text (or ``load_asr(config.asr)`` for another spec).
    """
    config = config or CorpusConfig.from_preset(preset, seed=seed, num_utterances=num_utterances)
    out = corpus_dir(config, output_dir)
    _check_writable(out)
    marker = _read_marker(out)
    if marker is not None and marker.get("fingerprint") == config.fingerprint() and not overwrite:
        logger.info("using the cached corpus at %s", out)
        return load_corpus(out)
    if out.exists() and any(out.iterdir()):
        if marker is None:
            raise ValueError(
                f"output_dir {str(out)!r} is not empty and holds no audiolang corpus (no {MARKER}): audiolang "
                "replaces only a corpus it built, even with overwrite. Choose another folder, or empty this one "
                "yourself."
            )
        if not overwrite:
            raise ValueError(
                f"output_dir {str(out)!r} holds another corpus (fingerprint {marker.get('fingerprint')}, this one "
                f"is {config.fingerprint()}); pass overwrite=True (--overwrite) to replace it, or choose another "
                "folder"
            )
        _check_replaceable(out, marker)
    plans = plan_corpus(config)
    check_engines({p.speaker.engine for p in plans})
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(out)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        _build_into(tmp, config, plans, num_workers, asr, progress)
        if marker is not None:
            _check_replaceable(out, marker)  # again: files may have been added during the build
            _remove_built(out, marker)
        if out.exists():
            out.rmdir()  # empty now: an empty folder, or a corpus that audiolang built (checked above)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("corpus written to %s", out)
    return load_corpus(out)


def _check_replaceable(out: Path, marker: dict[str, Any]) -> None:
    """Refuse to replace a corpus folder that holds files its build did not write (or cannot tell which those are)."""
    if "files" not in marker:
        raise ValueError(
            f"the corpus at {str(out)!r} predates file lists in {MARKER}: its files cannot be told from yours, so "
            "it is not replaced. Move anything of yours out of it and delete the folder, or choose another folder."
        )
    if foreign := _foreign_files(out, marker):
        raise ValueError(
            f"output_dir {str(out)!r} holds files that its corpus build did not write ({', '.join(foreign[:10])}"
            f"{', ...' if len(foreign) > 10 else ''}): --overwrite replaces only what a build wrote. Move them out "
            "of the folder, or choose another folder."
        )


def _build_into(
    tmp: Path,
    config: CorpusConfig,
    plans: list[UtterancePlan],
    num_workers: int | None,
    asr: ASRBackend | None,
    progress: bool,
) -> None:
    from datasets import Dataset, DatasetDict

    if asr is not None:
        recognisers = {"pretrain": asr, "labelled": asr}
    else:
        if config.asr == "pocketsphinx":
            pretrain_text = [p.text for p in plans if p.split == "pretrain"]
            lm_path, dict_path = build_pocketsphinx_lm(pretrain_text, tmp / "asr_lm")
            asr = PocketSphinxASR(lm_path=lm_path, dict_path=dict_path)
        else:
            asr = load_asr(config.asr)
        labelled = asr if config.labelled_asr in (None, config.asr) else load_asr(config.labelled_asr)
        recognisers = {"pretrain": asr, "labelled": labelled}
    workers = max(1, num_workers or os.cpu_count() or 1)
    # Rendering is subprocesses + numpy + pocketsphinx: fork is safe and avoids re-importing the
    # package in every worker. Elsewhere (macOS, Windows) spawn is the only safe choice.
    ctx = mp.get_context("fork" if sys.platform == "linux" else "spawn")
    bar = tqdm(total=len(plans), desc="render+ASR", unit="utt", disable=not progress)
    rendered: list[dict[str, Any]] = []
    chunks = render_chunks(plans)
    try:
        if workers == 1:
            _init_worker(recognisers)
            for chunk in chunks:
                rendered.extend(_render_chunk(chunk))
                bar.update(len(chunk))
        else:
            with ctx.Pool(workers, initializer=_init_worker, initargs=(recognisers,)) as pool:
                for rows in pool.imap(_render_chunk, chunks):
                    rendered.extend(rows)
                    bar.update(len(rows))
    finally:
        bar.close()
    features = corpus_features()
    splits = {}
    for split in SPLITS:
        idx = [i for i, p in enumerate(plans) if p.split == split]
        if not idx:  # an optional split left out of the configuration
            continue
        splits[split] = Dataset.from_dict(
            _rows([plans[i] for i in idx], [rendered[i] for i in idx]), features=features
        )
    dataset = DatasetDict(splits)
    stats = corpus_statistics(dataset)
    description = (
        f"audiolang embedded in-car corpus (preset {config.preset}, seed {config.seed}): {stats['utterances']} "
        f"utterances, {stats['speakers']} speakers, {stats['hours']} h; asr_text WER {stats['asr_wer']:.1%}, "
        f"CER {stats['asr_cer']:.1%} against the manual text ({config.asr}"
        + (
            f" for pretrain, {config.labelled_asr} for the labelled splits"
            if config.labelled_asr not in (None, config.asr)
            else ""
        )
        + "). Voices: "
        + ", ".join(
            f"{engine} {e['share']:.0%} of the utterances ({e['speakers']} speakers)"
            for engine, e in stats["per_engine"].items()
        )
        + "."
    )
    for split in dataset.values():
        split.info.description = description
    dataset.save_to_disk(str(tmp))
    write_marker(tmp, config, stats, description)


def write_marker(folder: Path, config: CorpusConfig, statistics: dict[str, Any], description: str) -> None:
    """Write the marker of a complete build into `folder`, last: its configuration (what rebuild hints repeat), its
    statistics, and every file the build wrote with its size (what `load_corpus` checks for damage and `--overwrite`
    deletes, and nothing else)."""
    info = {
        "fingerprint": config.fingerprint(),
        "config": asdict(config),
        "statistics": statistics,
        "description": description,
        # What the complete build wrote, so that a later truncated or deleted file is noticed at load time.
        "files": {
            file.relative_to(folder).as_posix(): file.stat().st_size
            for file in sorted(folder.rglob("*"))
            if file.is_file()
        },
    }
    # The marker is written last: a folder without it is never trusted.
    with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".json") as f:
        json.dump(info, f, indent=2, default=str)
    # NamedTemporaryFile creates the file 0600; the corpus is meant to be shared (a cache other users read).
    os.chmod(f.name, 0o644)
    os.replace(f.name, folder / MARKER)
