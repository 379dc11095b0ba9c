"""Cabin acoustics for the embedded corpus: car noise, far-field passengers, mixing at an SNR.

Cabin noise is generated, not recorded (no noise corpus can be downloaded here): low-frequency
rumble (leaky-integrated white noise), tyre/road noise (white noise through a low-pass at a random
corner) and engine harmonics whose
fundamental drifts slowly (RPM changes). Non-directed speech is rendered "farther" than a command to
the assistant: more reverberant (a synthetic exponentially decaying room response with a lower
direct-to-reverberant ratio), low-passed, and mixed at a lower SNR. Every range is a module constant
(``*_SNR_DB``, ``*_RT60_S``, ``*_DRR_DB``), drawn uniformly per utterance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from .synthesis import SAMPLING_RATE

DIRECTED_SNR_DB = (12.0, 26.0)  # driver speaking to the assistant, close to the cabin microphone
FAR_FIELD_SNR_DB = (5.0, 15.0)  # passenger talk: farther, quieter relative to the cabin noise
NOISE_RMS = (0.004, 0.02)  # absolute cabin-noise level, so that loudness alone is not a label
# A cabin is small and upholstered: short reverberation. Distance shows as a lower direct-to-reverberant
# energy ratio (DRR), not as a long tail.
FAR_FIELD_RT60_S = (0.12, 0.3)
NEAR_FIELD_RT60_S = (0.05, 0.12)
FAR_FIELD_DRR_DB = (2.0, 10.0)
NEAR_FIELD_DRR_DB = (12.0, 20.0)
LEADING_SILENCE_S = (0.1, 0.35)


@dataclass(frozen=True)
class MixInfo:
    snr_db: float
    rt60_s: float
    drr_db: float


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def cabin_noise(num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Stationary-ish car noise with slowly varying engine harmonics, unit RMS."""
    white = rng.standard_normal(num_samples)
    brown = signal.lfilter([1.0], [1.0, -0.995], white)  # leaky integrator: rumble without DC drift
    # Pink-ish road noise: white noise through a 1st-order low-pass at a random corner.
    corner = rng.uniform(300.0, 1200.0)
    b, a = signal.butter(1, corner / (SAMPLING_RATE / 2))
    road = signal.lfilter(b, a, rng.standard_normal(num_samples))
    t = np.arange(num_samples) / SAMPLING_RATE
    f0 = rng.uniform(25.0, 45.0) * (1.0 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.05, 0.3) * t))
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLING_RATE
    engine = sum(np.sin(h * phase + rng.uniform(0, 2 * np.pi)) / h for h in range(1, 6))
    parts = [brown / (_rms(brown) + 1e-12), road / (_rms(road) + 1e-12), engine / (_rms(engine) + 1e-12)]
    weights = rng.dirichlet([2.0, 2.0, 1.0])
    noise = sum(w * p for w, p in zip(weights, parts, strict=True))
    return (noise / (_rms(noise) + 1e-12)).astype(np.float32)


def room_response(rt60_s: float, drr_db: float, rng: np.random.Generator) -> np.ndarray:
    """A synthetic impulse response: a unit direct path plus an exponentially decaying diffuse tail
    (-60 dB at ``rt60_s``) whose energy is ``drr_db`` below the direct path's."""
    n = int(rt60_s * SAMPLING_RATE)
    t = np.arange(n) / SAMPLING_RATE
    tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60_s)  # ln(1000) = 6.9078: -60 dB at rt60
    tail[: int(0.002 * SAMPLING_RATE)] = 0.0  # first reflections arrive after ~2 ms
    tail *= np.sqrt(10 ** (-drr_db / 10) / (np.sum(tail**2) + 1e-12))
    tail[0] = 1.0
    return tail.astype(np.float32)


def render(
    speech: np.ndarray, rng: np.random.Generator, far_field: bool, gain: float = 1.0
) -> tuple[np.ndarray, MixInfo]:
    """Place speech in the cabin: pad, reverberate, mix with noise at a drawn SNR; peak-safe.

    ``gain`` is the emotion's amplitude factor: it scales speech over the drawn SNR, so louder speech
    really is louder relative to the same cabin.
    """
    lead = int(rng.uniform(*LEADING_SILENCE_S) * SAMPLING_RATE)
    trail = int(rng.uniform(*LEADING_SILENCE_S) * SAMPLING_RATE)
    rt60 = float(rng.uniform(*(FAR_FIELD_RT60_S if far_field else NEAR_FIELD_RT60_S)))
    drr = float(rng.uniform(*(FAR_FIELD_DRR_DB if far_field else NEAR_FIELD_DRR_DB)))
    wet = signal.fftconvolve(speech, room_response(rt60, drr, rng))[: speech.size + int(rt60 * SAMPLING_RATE)]
    if far_field:  # distance and the seat back absorb high frequencies
        b, a = signal.butter(2, rng.uniform(2500.0, 4500.0) / (SAMPLING_RATE / 2))
        wet = signal.lfilter(b, a, wet)
    wet = np.concatenate([np.zeros(lead), wet, np.zeros(trail)])
    snr_db = float(rng.uniform(*(FAR_FIELD_SNR_DB if far_field else DIRECTED_SNR_DB)))
    noise_rms = float(rng.uniform(*NOISE_RMS))
    noise = cabin_noise(wet.size, rng) * noise_rms
    # SNR is measured on the active speech, before the emotion gain.
    speech_rms = noise_rms * 10 ** (snr_db / 20) * gain
    mix = wet * (speech_rms / (_rms(wet[lead : lead + speech.size]) + 1e-12)) + noise
    peak = np.abs(mix).max()
    if peak > 0.98:  # scale the whole mix (noise too) so that loud speech never clips
        mix *= 0.98 / peak
    return mix.astype(np.float32), MixInfo(snr_db=snr_db + 20 * np.log10(gain), rt60_s=rt60, drr_db=drr)
