"""Offline speech synthesis for the embedded corpus: many distinct voices, emotional prosody.

Three engines from Debian main are used through their command-line programs: espeak-ng (accents x
voice variants, one formant synthesiser), flite (four voices) and festival (two diphone voices and one
HTS voice). Each voice gets a stable ``speaker_id`` and a personal pitch/rate offset, so that two
speakers of one engine differ even when they share a variant.

Emotion is realised as prosody (rate, pitch, pitch range, amplitude) drawn per utterance from the
overlapping ranges in ``EMOTION_PROSODY``: no emotion is one exact setting, and the speaker's own
offsets move the ranges further. Rate, pitch and pitch range go to the engine; amplitude is applied as a
gain when the utterance is mixed (acoustics.py), the same way for every engine.
"""

from __future__ import annotations

import io
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
ENGINE_PROGRAMS = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "text2wave"}


@dataclass(frozen=True)
class Prosody:
    rate: float = 1.0
    pitch: float = 1.0
    range: float = 1.0
    amplitude: float = 1.0


@dataclass(frozen=True)
class Voice:
    speaker_id: str
    engine: str  # "espeak-ng" | "flite" | "festival"
    name: str  # engine-specific voice name
    gender: str  # "f" | "m"
    pitch_offset: float = 1.0  # speaker's own multiplicative offsets
    rate_offset: float = 1.0


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


def check_engines(engines: set[str]) -> None:
    """Raise a RuntimeError naming the install command if a synthesiser program is missing."""
    missing = [ENGINE_PROGRAMS[e] for e in sorted(engines) if shutil.which(ENGINE_PROGRAMS[e]) is None]
    if missing:
        raise RuntimeError(f"speech synthesiser program(s) not found: {', '.join(missing)}; {INSTALL_HINT}")


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


def synthesize(voice: Voice, text: str, prosody: Prosody = Prosody()) -> np.ndarray:
    """Speak ``text`` with ``voice`` and ``prosody`` (amplitude excepted); 16 kHz mono float32."""
    rate = prosody.rate * voice.rate_offset
    pitch = prosody.pitch * voice.pitch_offset
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
