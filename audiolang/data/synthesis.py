"""Offline speech synthesis for the embedded corpus: many distinct voices, emotional prosody.

Three engines from Debian main are used through their command-line programs: espeak-ng (accents x
voice variants, one formant synthesiser), flite (four voices) and festival (two diphone voices and one
HTS voice). Each voice gets a stable ``speaker_id`` and a personal pitch/rate offset, so that two
speakers of one engine differ even when they share a variant.

A fourth engine, ``hibari`` (the ``hibari-tts`` package: a small neural voice distilled from Kokoro-82M's
``af_heart``, run with onnxruntime), gives natural-sounding speech. Only its bundled voice "heart" is used
(the package's other voices download on first use; nothing here ever triggers that). Pseudo-speakers are
made from that one voice (``hibari_inventory``): each has its own speaking rate (the engine's ``speed``), its
own F0 level (the engine's predicted F0 contour, scaled before the waveform is made) and a pitch-and-formant
shift of the whole voice by a few semitones with sox's ``pitch`` effect (WSOLA), as a shorter or longer vocal
tract would give.

Emotion is realised as prosody (rate, pitch, pitch range, amplitude) drawn per utterance from the
overlapping ranges in ``EMOTION_PROSODY``: no emotion is one exact setting, and the speaker's own
offsets move the ranges further. Rate, pitch and pitch range go to the engine; amplitude is applied as a
gain when the utterance is mixed (acoustics.py), the same way for every engine. hibari takes rate as its
``speed``, and pitch and pitch range as a scaling of its predicted F0 contour (level, and spread around the
utterance's median in log-frequency), which moves the harmonics under the predicted spectral envelope and so
leaves the formants in place. What hibari cannot express: voice quality (a breathy sad voice, a tense or harsh
angry one), the spectral tilt of vocal effort (loudness is only a gain), and emotional changes of the contour's
shape or of timing within the sentence (its duration model reads neutral text, and ``speed`` scales it as a
whole).
"""

from __future__ import annotations

import functools
import importlib.util
import io
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

SAMPLING_RATE = 16_000

# Per-emotion ranges of multiplicative factors (uniform draws). Ranges overlap on purpose.
#               rate            pitch           pitch range     amplitude
EMOTION_PROSODY: dict[str, dict[str, tuple[float, float]]] = {
    "neutral": {"rate": (0.93, 1.07), "pitch": (0.92, 1.08), "range": (0.8, 1.2), "amplitude": (0.85, 1.15)},
    "happy": {"rate": (1.0, 1.15), "pitch": (1.08, 1.30), "range": (1.3, 1.9), "amplitude": (1.0, 1.3)},
    "sad": {"rate": (0.78, 0.94), "pitch": (0.80, 0.96), "range": (0.4, 0.8), "amplitude": (0.55, 0.85)},
    "angry": {"rate": (1.04, 1.2), "pitch": (0.98, 1.15), "range": (1.1, 1.6), "amplitude": (1.3, 1.8)},
}

INSTALL_HINT = (
    "install the speech synthesisers with `apt-get install -y espeak-ng flite festival festvox-kallpc16k "
    "festvox-kdlpc16k festvox-us-slt-hts sox` (or run `make setup`, which does it)"
)
# hibari runs in Python; sox shifts its pseudo-speakers' pitch and formants and resamples them to 16 kHz.
ENGINE_PROGRAMS = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "text2wave", "hibari": "sox"}
HIBARI_PACKAGE = "hibari-tts==0.2.1"
HIBARI_VOICE = "heart"  # the one voice inside the wheel; the others would be downloaded
HIBARI_SAMPLING_RATE = 24_000
# Pseudo-speakers of the hibari voice (uniform ranges, spread by a Halton sequence): a pitch-and-formant shift
# in semitones (-3: F0 and every formant 16% lower, +2: 12% higher), the speaker's own F0 level on top of it, and
# speaking rate. Whisper base still recognised the extremes' speech in cabin noise at 10% WER (24 utterances).
HIBARI_SHIFT_SEMITONES = (-3.0, 2.0)
HIBARI_PITCH_OFFSET = (0.88, 1.12)
HIBARI_RATE_OFFSET = (0.92, 1.08)
HIBARI_NUM_SPEAKERS = 32
# EMOTION_PROSODY's pitch-range factors were set for espeak-ng's narrow default range; the hibari voice's own
# contour already spans about 4 semitones (standard deviation), and 1.9x that spanned 71-475 Hz in a sentence
# we tried. Its spread is range ** 0.5 (happy 1.14-1.38, sad 0.63-0.89).
HIBARI_RANGE_EXPONENT = 0.5
# The engine's threshold (hibari.dsp.pulses): frames with a predicted F0 below it are unvoiced.
_HIBARI_VOICED_HZ = 40.0


@dataclass(frozen=True)
class Prosody:
    rate: float = 1.0
    pitch: float = 1.0
    range: float = 1.0
    amplitude: float = 1.0


@dataclass(frozen=True)
class Voice:
    speaker_id: str
    engine: str  # "espeak-ng" | "flite" | "festival" | "hibari"
    name: str  # engine-specific voice name
    gender: str  # "f" | "m"
    pitch_offset: float = 1.0  # speaker's own multiplicative offsets
    rate_offset: float = 1.0
    shift_semitones: float = 0.0  # hibari: pitch-and-formant shift of the whole voice (sox pitch)


def sample_prosody(emotion: str, rng: np.random.Generator) -> Prosody:
    """Draw one utterance's prosody for an emotion from EMOTION_PROSODY."""
    if emotion not in EMOTION_PROSODY:
        raise ValueError(f"unknown emotion {emotion!r}; expected one of {sorted(EMOTION_PROSODY)}")
    r = EMOTION_PROSODY[emotion]
    return Prosody(*(float(rng.uniform(*r[k])) for k in ("rate", "pitch", "range", "amplitude")))


# The inventory is a fixed, ordered list so that speaker ids are stable across builds and machines.
_ESPEAK_ACCENTS = (
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
)
_ESPEAK_VARIANTS = (
    ("f1", "f"),
    ("m1", "m"),
    ("f2", "f"),
    ("m3", "m"),
    ("f3", "f"),
    ("m2", "m"),
    ("f4", "f"),
    ("m4", "m"),
    ("f5", "f"),
    ("m5", "m"),
    ("m6", "m"),
    ("m7", "m"),
    ("klatt2", "m"),
    ("klatt4", "f"),
)
_FLITE_VOICES = (("slt", "f"), ("rms", "m"), ("awb", "m"), ("kal16", "m"))
_FESTIVAL_VOICES = (("kal_diphone", "m"), ("ked_diphone", "m"), ("cmu_us_slt_arctic_hts", "f"))
# Typical F0 (mean, std in Hz) of the flite and festival voices, the base that prosody scales.
_F0_BASE = {
    "slt": (180.0, 25.0),
    "rms": (105.0, 15.0),
    "awb": (115.0, 15.0),
    "kal16": (105.0, 15.0),
    "kal_diphone": (105.0, 14.0),
    "ked_diphone": (105.0, 14.0),
}


def voice_inventory() -> list[Voice]:
    """Every voice the corpus can use, in a fixed order; a corpus takes a prefix of it.

    The recogniser's acoustic model is US English, as an in-car assistant sold in the US would be: the
    order alternates a US-English espeak-ng voice with one of another accent (British, Scottish,
    Caribbean, ...), so about half of any prefix's espeak-ng voices are US English and the rest are
    accented speakers, who are recognised worse, as they are in real products. flite and festival
    voices are interleaved early so that any prefix spans engines. Pitch/rate offsets are spread
    deterministically so that no two voices share both.
    """
    us = [("en-us", v) for v in _ESPEAK_VARIANTS]
    n_acc, n_var = len(_ESPEAK_ACCENTS) - 1, len(_ESPEAK_VARIANTS)
    # other accents x variants, the variant shifted by the accent index: a bijection over all pairs
    accented = [
        (_ESPEAK_ACCENTS[1 + k % n_acc], _ESPEAK_VARIANTS[(k // n_acc + k % n_acc) % n_var])
        for k in range(n_acc * n_var)
    ]
    order = [pair for pairs in zip(us, accented, strict=False) for pair in pairs] + accented[len(us) :]
    voices: list[Voice] = []
    for k, (accent, (variant, gender)) in enumerate(order):
        pitch = 0.88 + 0.24 * ((k * 7) % 13) / 12
        rate = 0.94 + 0.12 * ((k * 5) % 11) / 10
        voices.append(
            Voice(f"espeak-{accent}+{variant}", "espeak-ng", f"{accent}+{variant}", gender, pitch, rate)
        )
    others = [Voice(f"flite-{n}", "flite", n, g) for n, g in _FLITE_VOICES] + [
        Voice(f"festival-{n.split('_')[0]}" + ("-hts" if "hts" in n else ""), "festival", n, g)
        for n, g in _FESTIVAL_VOICES
    ]
    for i, voice in enumerate(others):
        voices.insert(3 + i * 5, voice)
    return voices


def _halton(index: int, base: int) -> float:
    """The ``index``-th element (from 1) of the van der Corput sequence in ``base``: any prefix is spread evenly."""
    value, scale = 0.0, 1.0
    while index:
        scale /= base
        index, digit = divmod(index, base)
        value += digit * scale
    return value


def hibari_inventory() -> list[Voice]:
    """The pseudo-speakers of the hibari voice, in a fixed order; a corpus takes a prefix of it.

    Their shift, F0 level and rate follow a three-dimensional Halton sequence over the ``HIBARI_*`` ranges, so
    that any prefix spans the ranges and no two speakers share all three.
    """
    voices = []
    for k in range(1, HIBARI_NUM_SPEAKERS + 1):
        shift, pitch, rate = (
            lo + (hi - lo) * _halton(k, base)
            for (lo, hi), base in zip(
                (HIBARI_SHIFT_SEMITONES, HIBARI_PITCH_OFFSET, HIBARI_RATE_OFFSET), (2, 3, 5), strict=True
            )
        )
        voices.append(
            Voice(
                f"hibari-{HIBARI_VOICE}-{k:02d}",
                "hibari",
                HIBARI_VOICE,
                "f",
                pitch_offset=round(pitch, 4),
                rate_offset=round(rate, 4),
                shift_semitones=round(shift, 3),
            )
        )
    return voices


def check_engines(engines: set[str]) -> None:
    """Raise a RuntimeError naming the install command if a synthesiser program or package is missing."""
    missing = [ENGINE_PROGRAMS[e] for e in sorted(engines) if shutil.which(ENGINE_PROGRAMS[e]) is None]
    if missing:
        raise RuntimeError(f"speech synthesiser program(s) not found: {', '.join(missing)}; {INSTALL_HINT}")
    if "hibari" in engines and importlib.util.find_spec("hibari") is None:
        raise RuntimeError(
            f"the neural voice engine is not installed: `pip install {HIBARI_PACKAGE}` (or run `make setup`)"
        )


def _run(cmd: list[str], stdin: str | None = None) -> None:
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.strip()[:500]}")


def _read_16k(path: Path) -> np.ndarray:
    audio, sr = sf.read(path, dtype="float32", always_2d=False)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if sr != SAMPLING_RATE:
        audio = librosa.resample(audio, orig_sr=sr, target_sr=SAMPLING_RATE, res_type="soxr_hq")
    return np.ascontiguousarray(audio, dtype=np.float32)


@functools.cache
def _hibari_engine(pid: int):
    """One hibari model per process (``pid`` keys the cache: a forked worker loads its own onnxruntime session)."""
    try:
        from hibari import Hibari
        from hibari.voices import VOICES, voice_path
    except ImportError as err:
        raise RuntimeError(f"`pip install {HIBARI_PACKAGE}` to use the hibari voice") from err
    if not VOICES.get(HIBARI_VOICE, {}).get("bundled"):
        raise RuntimeError(
            f"this hibari-tts does not bundle the voice {HIBARI_VOICE!r}; install {HIBARI_PACKAGE}"
        )
    # voice_path with download_missing=False: the bundled file, never a download.
    return Hibari(voice=HIBARI_VOICE, model=voice_path(HIBARI_VOICE, download_missing=False), threads=1)


def reshape_f0(f0: np.ndarray, scale: float = 1.0, spread: float = 1.0) -> np.ndarray:
    """Scale an F0 contour's voiced frames: their level by ``scale`` and their spread around the median by
    ``spread`` in log-frequency (2.0 doubles every interval in semitones); unvoiced frames are kept."""
    f0 = np.asarray(f0, dtype=np.float32)
    voiced = f0 > _HIBARI_VOICED_HZ
    if not voiced.any() or (scale == 1.0 and spread == 1.0):
        return f0
    log_f0 = np.log(f0[voiced])
    centre = np.median(log_f0)
    out = f0.copy()
    # never pushed below the engine's voicing threshold, where the frame would turn unvoiced
    out[voiced] = np.maximum(np.exp(centre + spread * (log_f0 - centre)) * scale, 1.25 * _HIBARI_VOICED_HZ)
    return out


def hibari_speech(
    text: str, speed: float = 1.0, seed: int = 0, f0_scale: float = 1.0, f0_spread: float = 1.0
) -> np.ndarray:
    """hibari's voice at its own 24 kHz, with its F0 contour reshaped by ``reshape_f0`` before the waveform is made.

    The same steps as ``Hibari()(text, speed=speed, seed=seed)`` (the same random stream too, so with
    ``f0_scale == f0_spread == 1`` the audio is identical), with the F0 step between the network and the DSP.
    """
    from hibari import dsp

    tts = _hibari_engine(os.getpid())
    rng = np.random.default_rng(seed)
    parts = []
    for phonemes in tts.phonemize(text):
        ids = tts.ids(phonemes)
        if len(ids) < 3:  # nothing between the two pads
            continue
        inputs = {"ids": np.asarray([ids], np.int64), "speed": np.asarray([speed], np.float32)}
        lh, th, ln, lr, phi, f0 = (o[0] for o in tts.sess.run(None, inputs))
        parts.append(dsp.synth(lh, th, ln, lr, phi, reshape_f0(f0, f0_scale, f0_spread), rng))
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def shift_and_resample(audio: np.ndarray, sampling_rate: int, semitones: float) -> np.ndarray:
    """Shift pitch and formants together by ``semitones`` (sox ``pitch``: WSOLA, duration kept) and resample to
    16 kHz (sox ``rate -v``); float32 in and out, no dither, so the result is deterministic."""
    effects = (["pitch", f"{100 * semitones:.0f}"] if abs(semitones) >= 0.005 else []) + ["rate", "-v"]
    raw = ["-t", "raw", "-e", "floating-point", "-b", "32", "-c", "1"]
    cmd = ["sox", "-V1", "-D", *raw, "-r", str(sampling_rate), "-", *raw, "-r", str(SAMPLING_RATE), "-"]
    proc = subprocess.run(
        [*cmd, *effects, str(SAMPLING_RATE)],
        input=np.ascontiguousarray(audio, dtype=np.float32).tobytes(),
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"sox failed ({proc.returncode}): {proc.stderr.decode(errors='replace').strip()[:500]}"
        )
    return np.frombuffer(proc.stdout, dtype=np.float32).copy()


def _hibari_text(text: str) -> str:
    # The corpus text has no punctuation; a final full stop gives the sentence its final fall.
    return text if text.rstrip()[-1:] in ".?!" else f"{text.rstrip()}."


def synthesize(voice: Voice, text: str, prosody: Prosody = Prosody(), seed: int = 0) -> np.ndarray:
    """Speak ``text`` with ``voice`` and ``prosody`` (amplitude excepted); 16 kHz mono float32.

    ``seed`` fixes the random parts of engines that have them (hibari's noise component); the command-line
    engines are deterministic without it.
    """
    rate = prosody.rate * voice.rate_offset
    pitch = prosody.pitch * voice.pitch_offset
    if voice.engine == "hibari":
        spread = prosody.range**HIBARI_RANGE_EXPONENT
        speech = hibari_speech(_hibari_text(text), speed=rate, seed=seed, f0_scale=pitch, f0_spread=spread)
        audio = shift_and_resample(speech, HIBARI_SAMPLING_RATE, voice.shift_semitones)
        if audio.size == 0 or not np.any(audio):
            raise RuntimeError(f"hibari produced no audio for {text!r}")
        return audio
    with tempfile.TemporaryDirectory(prefix="audiolang-tts-") as tmp:
        out = Path(tmp) / "out.wav"
        if voice.engine == "espeak-ng":
            # -p is espeak's 0-99 pitch scale (50 = voice default); SSML carries the pitch range.
            ssml = f'<speak><prosody range="{100 * prosody.range:.0f}%">{text}</prosody></speak>'
            _run(
                [
                    "espeak-ng",
                    "-v",
                    voice.name,
                    "-s",
                    f"{165 * rate:.0f}",
                    "-p",
                    f"{min(99, 50 * pitch):.0f}",
                    "-m",
                    "-w",
                    str(out),
                    ssml,
                ]
            )
        elif voice.engine == "flite":
            f0, std = _F0_BASE[voice.name]
            _run(
                [
                    "flite",
                    "-voice",
                    voice.name,
                    "--setf",
                    f"duration_stretch={1 / rate:.3f}",
                    "--setf",
                    f"int_f0_target_mean={f0 * pitch:.1f}",
                    "--setf",
                    f"int_f0_target_stddev={std * prosody.range:.1f}",
                    "-t",
                    text,
                    "-o",
                    str(out),
                ]
            )
        elif voice.engine == "festival":
            evals = [f"(voice_{voice.name})", f"(Parameter.set 'Duration_Stretch {1 / rate:.3f})"]
            if voice.name in _F0_BASE:  # diphone voices take linear-regression F0 targets; HTS does not
                f0, std = _F0_BASE[voice.name]
                evals.append(
                    f"(set! int_lr_params '((target_f0_mean {f0 * pitch:.1f}) (target_f0_std "
                    f"{std * prosody.range:.1f}) (model_f0_mean 170) (model_f0_std 34)))"
                )
            cmd = ["text2wave", "-o", str(out)]
            for e in evals:
                cmd += ["-eval", e]
            _run(cmd, stdin=text)
        else:
            raise ValueError(f"unknown synthesis engine {voice.engine!r}")
        audio = _read_16k(out)
    if audio.size == 0 or not np.any(audio):
        raise RuntimeError(f"{voice.engine} produced no audio for {text!r} with voice {voice.name}")
    return audio


def wav_bytes(audio: np.ndarray, fmt: str = "FLAC") -> bytes:
    """Encode 16 kHz mono float audio losslessly as 16-bit FLAC (deterministic bytes)."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(audio, -1.0, 1.0), SAMPLING_RATE, format=fmt, subtype="PCM_16")
    return buf.getvalue()
