"""The embedded in-car voice-assistant corpus: built offline, deterministic for a seed, cached.

DSCLAP's setting is an in-vehicle assistant with lots of raw audio, an imperfect recogniser and few
labels. No such corpus can be downloaded here, so this module builds one:

1. a seeded *plan* (main process): for every utterance, its split, speaker, sentence (templates.py),
   emotion and prosody (synthesis.py), directedness and a render seed;
2. a domain language model for the recogniser, built from the ``pretrain`` split's manual text only,
   so that held-out test sentences cannot leak into recognition;
3. *rendering* (a process pool, all cores): synthesis, cabin acoustics (acoustics.py) and real offline
   recognition (pocketsphinx by default) of every utterance, giving ``asr_text`` with real errors;
4. an atomic save: everything is written into a temporary sibling folder that is renamed into place
   only when complete, so an interrupted build never leaves a folder that a later run trusts.

The result is a ``datasets.DatasetDict`` with splits ``pretrain`` (the bulk, meant to be used without
labels), ``train``, ``validation``, ``test`` (held-out templates and slot values) and ``speaker_test``
(spoken only by speakers unseen in every other split), saved with ``save_to_disk``.
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
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..metrics.asr import character_error_rate, word_error_rate
from .acoustics import render
from .asr import ASRBackend, PocketSphinxASR, build_pocketsphinx_lm, load_asr
from .synthesis import (
    SAMPLING_RATE,
    Prosody,
    Voice,
    check_engines,
    sample_prosody,
    synthesize,
    voice_inventory,
    wav_bytes,
)
from .templates import DIRECTED_NAMES, EMOTION_VALENCE, EMOTIONS, INTENTS, sample_sentence, text_valence

logger = logging.getLogger(__name__)

CORPUS_VERSION = "1"
SPLITS: tuple[str, ...] = ("pretrain", "train", "validation", "test", "speaker_test")
MARKER = "audiolang_corpus.json"
# Share of utterances whose distance does not follow their label (a driver's aside to a passenger, a
# passenger leaning in to give a command), so that the acoustics alone cannot solve directedness.
FLIPPED_FIELD_RATE = 0.15

# Split sizes and speaker counts. ``large`` is scaled by ``num_utterances`` (default 20,000).
CORPUS_PRESETS: dict[str, dict[str, int]] = {
    "tiny": dict(pretrain=48, train=24, validation=12, test=12, speaker_test=16, speakers=8, test_speakers=4),
    "default": dict(
        pretrain=2600, train=800, validation=200, test=400, speaker_test=240, speakers=30, test_speakers=6
    ),
    "large": dict(
        pretrain=14000,
        train=3000,
        validation=1000,
        test=1200,
        speaker_test=800,
        speakers=60,
        test_speakers=10,
    ),
}


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
    version: str = CORPUS_VERSION

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
        )
        config = replace(config, **overrides)
        config.validate()
        return config

    def validate(self) -> None:
        if set(self.split_sizes) != set(SPLITS):
            raise ValueError(
                f"split_sizes must give a size for each of {SPLITS}, got {sorted(self.split_sizes)}"
            )
        bad = {s: n for s, n in self.split_sizes.items() if not isinstance(n, int) or n < 1}
        if bad:
            raise ValueError(f"split sizes must be positive integers, got {bad}")
        if self.num_speakers < 2 or self.num_test_speakers < 2:
            raise ValueError("num_speakers and num_test_speakers must each be at least 2")
        available = len(voice_inventory())
        if self.num_speakers + self.num_test_speakers > available:
            raise ValueError(
                f"num_speakers + num_test_speakers = {self.num_speakers + self.num_test_speakers} exceeds the "
                f"{available} synthetic voices available"
            )
        if not 0.0 < self.directed_ratio < 1.0:
            raise ValueError(f"directed_ratio must be in (0, 1), got {self.directed_ratio}")

    def fingerprint(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True).encode()
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


def select_speakers(config: CorpusConfig) -> tuple[list[Voice], list[Voice]]:
    """(seen, unseen) voices: the first ``num_speakers + num_test_speakers`` of the inventory, with the
    unseen ones spread evenly through that prefix so that they span engines too."""
    pool = voice_inventory()[: config.num_speakers + config.num_test_speakers]
    step = len(pool) / config.num_test_speakers
    unseen_idx = {int(i * step + step / 2) for i in range(config.num_test_speakers)}
    seen = [v for i, v in enumerate(pool) if i not in unseen_idx]
    unseen = [v for i, v in enumerate(pool) if i in unseen_idx]
    return seen, unseen


def plan_corpus(config: CorpusConfig) -> list[UtterancePlan]:
    """Decide every utterance of the corpus from the seed alone (no audio yet)."""
    rng = np.random.default_rng([config.seed, 0xA0D1])
    seen, unseen = select_speakers(config)
    plans: list[UtterancePlan] = []
    training_texts: set[str] = set()
    for split in SPLITS:  # "test" comes after every training split, so collisions can be rejected
        speakers = unseen if split == "speaker_test" else seen
        for i in range(config.split_sizes[split]):
            directed = bool(rng.random() < config.directed_ratio)
            emotion = EMOTIONS[int(rng.integers(len(EMOTIONS)))]
            held_out = split == "test"
            for _ in range(100):
                sentence = sample_sentence(rng, emotion, directed, held_out=held_out)
                if not held_out or sentence.text not in training_texts:
                    break
            else:  # pragma: no cover - the held-out pools make this practically impossible
                raise RuntimeError("could not draw a test sentence unseen in training")
            if split in ("pretrain", "train", "validation"):
                training_texts.add(sentence.text)
            valence = EMOTION_VALENCE[emotion] + text_valence(sentence.text) + rng.normal(0.0, 0.25)
            far_field = (not directed) != bool(rng.random() < FLIPPED_FIELD_RATE)
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
    return plans


# --- rendering (runs in worker processes) ---------------------------------------------------------

_WORKER_ASR: ASRBackend | None = None


def _init_worker(asr: ASRBackend) -> None:
    global _WORKER_ASR
    _WORKER_ASR = asr


def _render_one(plan: UtterancePlan) -> dict[str, Any]:
    assert _WORKER_ASR is not None, "worker not initialised"
    rng = np.random.default_rng(plan.seed)
    speech = synthesize(plan.speaker, plan.text, plan.prosody)
    audio, info = render(speech, rng, far_field=plan.far_field, gain=plan.prosody.amplitude)
    asr_text = _WORKER_ASR.transcribe([audio], SAMPLING_RATE)[0]
    return {
        "audio": {"bytes": wav_bytes(audio), "path": None},
        "asr_text": asr_text,
        "duration": round(audio.size / SAMPLING_RATE, 4),
        "snr_db": round(info.snr_db, 2),
        "rt60_s": round(info.rt60_s, 3),
    }


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
    root = os.environ.get("AUDIOLANG_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "audiolang"
    )
    return Path(root) / "corpus"


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
            f"{'; ...' if len(problems) > 5 else ''}): rebuild it with `python run_scripts/run_build_corpus.py "
            f"--output_dir {path} --overwrite` (or build_corpus(..., overwrite=True))."
        )
    return load_from_disk(str(path))


def corpus_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The statistics and configuration stored beside a built corpus."""
    info = _read_marker(Path(path))
    if info is None:
        raise ValueError(f"{str(path)!r} is not a complete audiolang corpus (no {MARKER})")
    return info


def format_statistics(stats: dict[str, Any]) -> str:
    """A plain-text table of split sizes, speakers, hours and ASR error rates (``corpus_info(path)["statistics"]``)."""
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
    return "\n".join(lines)


# The columns `corpus_statistics` reads: a dataset that has them can be described like the corpus.
STATISTICS_COLUMNS = ("text", "asr_text", "speaker_id", "duration", "directed", "engine")


def corpus_statistics(dataset) -> dict[str, Any]:
    """Per-split sizes, speakers, hours, emotion/directed balance, and ASR WER/CER against ``text``."""
    stats: dict[str, Any] = {"splits": {}}
    all_refs: list[str] = []
    all_hyps: list[str] = []
    speakers: set[str] = set()
    for split in dataset:
        cols = dataset[split].select_columns(list(STATISTICS_COLUMNS))
        text, hyp = cols["text"], cols["asr_text"]
        spk = set(cols["speaker_id"])
        speakers |= spk
        all_refs += text
        all_hyps += hyp
        stats["splits"][split] = {
            "utterances": len(text),
            "speakers": len(spk),
            "hours": round(float(np.sum(cols["duration"])) / 3600, 3),
            "directed_share": round(float(np.mean(cols["directed"])), 3),
            "engines": sorted(set(cols["engine"])),
            "asr_wer": round(word_error_rate(text, hyp), 4),
            "asr_cer": round(character_error_rate(text, hyp), 4),
        }
    stats["utterances"] = len(all_refs)
    stats["speakers"] = len(speakers)
    stats["hours"] = round(sum(s["hours"] for s in stats["splits"].values()), 3)
    stats["asr_wer"] = round(word_error_rate(all_refs, all_hyps), 4)
    stats["asr_cer"] = round(character_error_rate(all_refs, all_hyps), 4)
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
    plans = plan_corpus(config)
    check_engines({p.speaker.engine for p in plans})
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(out)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        _build_into(tmp, config, plans, num_workers, asr, progress)
        if out.exists():
            shutil.rmtree(out)  # an empty folder, or a corpus that audiolang built (checked above)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("corpus written to %s", out)
    return load_corpus(out)


def _build_into(
    tmp: Path,
    config: CorpusConfig,
    plans: list[UtterancePlan],
    num_workers: int | None,
    asr: ASRBackend | None,
    progress: bool,
) -> None:
    from datasets import Dataset, DatasetDict

    if asr is None:
        if config.asr == "pocketsphinx":
            pretrain_text = [p.text for p in plans if p.split == "pretrain"]
            lm_path, dict_path = build_pocketsphinx_lm(pretrain_text, tmp / "asr_lm")
            asr = PocketSphinxASR(lm_path=lm_path, dict_path=dict_path)
        else:
            asr = load_asr(config.asr)
    workers = max(1, num_workers or os.cpu_count() or 1)
    # Rendering is subprocesses + numpy + pocketsphinx: fork is safe and avoids re-importing the
    # package in every worker. Elsewhere (macOS, Windows) spawn is the only safe choice.
    ctx = mp.get_context("fork" if sys.platform == "linux" else "spawn")
    bar = tqdm(total=len(plans), desc="render+ASR", unit="utt", disable=not progress)
    rendered: list[dict[str, Any]] = []
    try:
        if workers == 1:
            _init_worker(asr)
            for plan in plans:
                rendered.append(_render_one(plan))
                bar.update()
        else:
            with ctx.Pool(workers, initializer=_init_worker, initargs=(asr,)) as pool:
                for row in pool.imap(_render_one, plans, chunksize=4):
                    rendered.append(row)
                    bar.update()
    finally:
        bar.close()
    features = corpus_features()
    splits = {}
    for split in SPLITS:
        idx = [i for i, p in enumerate(plans) if p.split == split]
        splits[split] = Dataset.from_dict(
            _rows([plans[i] for i in idx], [rendered[i] for i in idx]), features=features
        )
    dataset = DatasetDict(splits)
    stats = corpus_statistics(dataset)
    description = (
        f"audiolang embedded in-car corpus (preset {config.preset}, seed {config.seed}): {stats['utterances']} "
        f"utterances, {stats['speakers']} speakers, {stats['hours']} h; asr_text WER {stats['asr_wer']:.1%}, "
        f"CER {stats['asr_cer']:.1%} against the manual text ({config.asr})."
    )
    for split in dataset.values():
        split.info.description = description
    dataset.save_to_disk(str(tmp))
    info = {
        "fingerprint": config.fingerprint(),
        "config": asdict(config),
        "statistics": stats,
        "description": description,
        # What the complete build wrote, so that a later truncated or deleted file is noticed at load time.
        "files": {
            file.relative_to(tmp).as_posix(): file.stat().st_size
            for file in sorted(tmp.rglob("*"))
            if file.is_file()
        },
    }
    # The marker is written last: a folder without it is never trusted.
    with tempfile.NamedTemporaryFile("w", dir=tmp, delete=False, suffix=".json") as f:
        json.dump(info, f, indent=2, default=str)
    # NamedTemporaryFile creates the file 0600; the corpus is meant to be shared (a cache other users read).
    os.chmod(f.name, 0o644)
    os.replace(f.name, tmp / MARKER)
