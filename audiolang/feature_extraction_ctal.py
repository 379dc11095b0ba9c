"""Feature extractor for CTAL: 160-dim log-mel + delta frames (CTAL paper, section 3.1.1), batched."""

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from transformers import BatchFeature, SequenceFeatureExtractor
from transformers.utils import TensorType

from .audio_utils import validate_raw_audio

__all__ = ["CtalFeatureExtractor"]

# Frames per FFT call: the spectrum of a chunk (about 2 MiB at n_fft=2048) stays in cache for the mel projection.
_FRAMES_PER_CHUNK = 256


class CtalFeatureExtractor(SequenceFeatureExtractor):
    r"""Turns raw 16 kHz mono waveforms into CTAL's acoustic input: `input_features` `(batch, frames, 160)` and
    `audio_attention_mask` `(batch, frames)`.

    Each clip is cut into frames of 50 ms (`win_length=800` samples, Hann window) every 12.5 ms (`hop_length=200`);
    each frame gives an 80-band power mel spectrogram (`n_fft=2048`, librosa's Slaney mel filterbank), its
    logarithm `log(mel + 1e-6)`, and the first-order deltas of that over 9 frames, concatenated to 160 values. With
    `do_normalize=False` the features of every clip equal (within 1e-4, float32 rounding) what the paper's librosa
    recipe gives for that clip alone:

    ```python
    mel = librosa.feature.melspectrogram(y=clip, sr=16000, n_fft=2048, hop_length=200, win_length=800, n_mels=80)
    log_mel = np.log(mel + 1e-6)
    features = np.concatenate([log_mel, librosa.feature.delta(log_mel)]).T  # (1 + len(clip) // 200, 160)
    ```

    A clip of `n` samples gives `1 + n // hop_length` frames (librosa's centred frames, zero-padded at both ends).
    The real frames of the whole batch are windowed together and transformed in chunks, with no per-clip loop and
    no work spent on padding; padding never leaks into a shorter clip's frames or deltas. With `do_normalize=True`
    (default) each of the 160 dimensions is then normalised to zero mean and unit variance over the clip's own
    frames. Padded frames hold `padding_value` (0).

    Limits, checked per clip (`audiolang.audio_utils.validate_raw_audio` names the clip and the fix):

    - at most `max_audio_frames` frames (default 2400, i.e. 30 s: clips of up to `max_audio_frames * hop_length - 1`
      = 479,999 samples). Longer clips raise unless `truncation=True`, which keeps their first
      `max_length * hop_length - 1` samples (the longest prefix that gives `max_length` frames; `max_length`
      defaults to `max_audio_frames`);
    - at least `delta_width` frames (`(delta_width - 1) * hop_length` = 1,600 samples, 0.1 s): librosa's deltas
      are undefined on fewer frames;
    - the sampling rate must be given and equal `sampling_rate`; empty, silent, non-finite or multi-channel clips
      raise.

    Args:
        sampling_rate (`int`, *optional*, defaults to 16000):
            The rate the model was trained on; inputs must match it.
        n_fft (`int`, *optional*, defaults to 2048):
            FFT size (the window is zero-padded to it).
        hop_length (`int`, *optional*, defaults to 200):
            Frame step in samples (12.5 ms at 16 kHz).
        win_length (`int`, *optional*, defaults to 800):
            Frame width in samples (50 ms at 16 kHz).
        num_mel_bins (`int`, *optional*, defaults to 80):
            Mel bands; the feature size is twice this (log-mel + deltas).
        delta_width (`int`, *optional*, defaults to 9):
            Frames in the delta filter (odd, >= 3; librosa's default).
        log_offset (`float`, *optional*, defaults to 1e-6):
            Added to the mel power before the logarithm.
        do_normalize (`bool`, *optional*, defaults to `True`):
            Per-clip, per-dimension mean and variance normalisation over the clip's frames.
        max_audio_frames (`int`, *optional*, defaults to 2400):
            Longest accepted clip in frames, and the length that `padding="max_length"` pads to.
        feature_size (`int`, *optional*):
            Must be `2 * num_mel_bins` when given (saved configs carry it).
        padding_value (`float`, *optional*, defaults to 0.0):
            Value of padded frames.
    """

    model_input_names = ["input_features", "audio_attention_mask"]

    def __init__(
        self,
        sampling_rate: int = 16_000,
        n_fft: int = 2048,
        hop_length: int = 200,
        win_length: int = 800,
        num_mel_bins: int = 80,
        delta_width: int = 9,
        log_offset: float = 1e-6,
        do_normalize: bool = True,
        max_audio_frames: int = 2400,
        feature_size: int | None = None,
        padding_value: float = 0.0,
        **kwargs: Any,
    ):
        if feature_size is not None and feature_size != 2 * num_mel_bins:
            raise ValueError(
                f"`feature_size` must be 2 * num_mel_bins = {2 * num_mel_bins} (log-mel + deltas), got "
                f"{feature_size}: leave it unset."
            )
        if delta_width < 3 or delta_width % 2 == 0:
            raise ValueError(f"`delta_width` must be an odd integer >= 3, got {delta_width}.")
        if n_fft % 2 or not 0 < win_length <= n_fft:
            raise ValueError(
                f"`n_fft` must be even and `win_length` in (0, n_fft], got {n_fft} and {win_length}."
            )
        if max_audio_frames < delta_width:
            raise ValueError(
                f"`max_audio_frames` must be at least `delta_width` ({delta_width}), got {max_audio_frames}."
            )
        if not kwargs.pop("return_attention_mask", True):
            raise ValueError(
                "`return_attention_mask=False` is not supported: CTAL needs `audio_attention_mask` to ignore padded "
                "frames."
            )
        super().__init__(
            feature_size=2 * num_mel_bins,
            sampling_rate=sampling_rate,
            padding_value=padding_value,
            return_attention_mask=True,
            **kwargs,
        )
        if self.padding_side != "right":
            raise ValueError(f"`padding_side` must be 'right', got {self.padding_side!r}.")
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.win_length = win_length
        self.num_mel_bins = num_mel_bins
        self.delta_width = delta_width
        self.log_offset = log_offset
        self.do_normalize = do_normalize
        self.max_audio_frames = max_audio_frames
        # `mel_filters` and `window` are rebuilt from the fields above, never saved (`to_dict` drops them). Each
        # FFT bin feeds at most two bands: a sparse `(n_fft // 2 + 1, num_mel_bins)` projection costs ~40x fewer
        # operations than the dense one (and no BLAS threads, which contend badly with data-loader workers).
        # librosa and scipy load here, not at import: registering this class with `AutoFeatureExtractor` imports the
        # module, and the two cost more than the Auto class itself.
        import librosa
        import scipy.sparse

        self.mel_filters = scipy.sparse.csr_array(
            librosa.filters.mel(sr=sampling_rate, n_fft=n_fft, n_mels=num_mel_bins).T
        )
        self.window = librosa.filters.get_window("hann", win_length, fftbins=True).astype(np.float32)

    def num_frames(self, num_samples: int) -> int:
        """Frames of a clip of `num_samples` samples: `1 + num_samples // hop_length`."""
        return 1 + num_samples // self.hop_length

    def __call__(
        self,
        raw_speech: Any,
        sampling_rate: int | None = None,
        padding: bool | str = "longest",
        max_length: int | None = None,
        truncation: bool = False,
        pad_to_multiple_of: int | None = None,
        return_tensors: str | TensorType | None = None,
    ) -> BatchFeature:
        """Validate clips and turn them into padded log-mel + delta frames.

        Args:
            raw_speech: One 1-D waveform, a list of them, or a `(batch, samples)` array (numpy or torch).
            sampling_rate: Required; must equal `self.sampling_rate`.
            padding: `"longest"`/`True` (default) pads to the longest clip of the batch; `"max_length"` pads to
                `max_length` (default `max_audio_frames`) frames.
            max_length: Frame count for `padding="max_length"` and `truncation=True`.
            truncation: Keep the first `max_length * hop_length - 1` samples of longer clips instead of raising.
            pad_to_multiple_of: Round the padded frame count up to a multiple of this.
            return_tensors: `"pt"` or `"np"`, or `None` for numpy arrays.

        Returns:
            `BatchFeature` with `input_features` `(batch, frames, 2 * num_mel_bins)` float32 and
            `audio_attention_mask` `(batch, frames)` int32 (1 on real frames).
        """
        if padding not in (True, "longest", "max_length"):
            raise ValueError(
                f"`padding` must be 'longest' (or True) or 'max_length', got {padding!r}: CTAL batches are "
                f"always padded, with `audio_attention_mask` marking the real frames."
            )
        max_length = max_length or self.max_audio_frames
        clips = validate_raw_audio(
            raw_speech,
            sampling_rate,
            expected_sampling_rate=self.sampling_rate,
            max_samples=None if truncation else self.max_audio_frames * self.hop_length - 1,
        )
        if truncation:
            clips = [clip[: max_length * self.hop_length - 1] for clip in clips]
        self._check_min_length(clips)
        lengths = np.array([self.num_frames(len(clip)) for clip in clips])
        padded_frames = max_length if padding == "max_length" else int(lengths.max())
        if padded_frames < lengths.max():
            raise ValueError(
                f"`max_length` is {max_length} frames but the longest clip gives {lengths.max()}: pass "
                f"`truncation=True` to keep the first {max_length} frames, or a larger `max_length`."
            )
        if pad_to_multiple_of:
            padded_frames = -(-padded_frames // pad_to_multiple_of) * pad_to_multiple_of
        features = np.zeros((len(clips), padded_frames, self.feature_size), dtype=np.float32)
        features[:, : lengths.max()] = self._extract(clips, lengths)
        mask = (np.arange(padded_frames)[None, :] < lengths[:, None]).astype(np.int32)
        if self.padding_value:
            features[mask == 0] = self.padding_value
        return BatchFeature(
            {"input_features": features, "audio_attention_mask": mask}, tensor_type=return_tensors
        )

    @property
    def min_samples(self) -> int:
        """The shortest clip this extractor takes: `delta_width` frames, which the delta features need."""
        return (self.delta_width - 1) * self.hop_length

    def _check_min_length(self, clips: list[np.ndarray]) -> None:
        min_samples = self.min_samples
        for index, clip in enumerate(clips):
            if len(clip) < min_samples:
                name = f"audio[{index}]" if len(clips) > 1 else "audio"
                raise ValueError(
                    f"`{name}` has {len(clip)} samples ({len(clip) / self.sampling_rate:.3f} s), fewer than the "
                    f"{min_samples} samples ({min_samples / self.sampling_rate:.3f} s) that give the "
                    f"{self.delta_width} frames the delta features need: drop such short clips, or pad them with "
                    f"silence."
                )

    def _extract(self, clips: list[np.ndarray], lengths: np.ndarray) -> np.ndarray:
        """Features `(len(clips), max(lengths), feature_size)` of clips with `lengths` frames; zeros beyond them."""
        valid = np.arange(lengths.max())[None, :] < lengths[:, None]
        log_mel = np.zeros((len(clips), lengths.max(), self.num_mel_bins), dtype=np.float32)
        log_mel[valid] = np.log(self._mel_power(self._windowed_frames(clips, valid)) + self.log_offset)
        features = np.concatenate([log_mel, self._deltas(log_mel, lengths)], axis=-1)
        features *= valid[..., None]
        if self.do_normalize:
            count = lengths[:, None, None].astype(np.float32)
            centred = (features - features.sum(1, keepdims=True) / count) * valid[..., None]
            features = centred / np.sqrt(np.square(centred).sum(1, keepdims=True) / count + 1e-7)
        return features

    def _windowed_frames(self, clips: list[np.ndarray], valid: np.ndarray) -> np.ndarray:
        """The real frames of every clip, windowed, stacked: `(valid.sum(), win_length)`.

        librosa centres frame `t` on sample `t * hop_length` of the clip zero-padded by `n_fft // 2` (its default
        `pad_mode="constant"`), and zero-pads the window to `n_fft`; only the `win_length` windowed samples are
        kept here (the FFT zero-pads them back to `n_fft`, which changes the phase, not the power). The zeros after
        a short clip in the batch buffer are the zeros librosa pads it with, so its frames are its own.
        """
        left = self.n_fft // 2 - (self.n_fft - self.win_length) // 2
        buffer = np.zeros((len(clips), (valid.shape[1] - 1) * self.hop_length + self.win_length), np.float32)
        for row, clip in enumerate(clips):
            kept = clip[: buffer.shape[1] - left]
            buffer[row, left : left + len(kept)] = kept
        frames = sliding_window_view(buffer, self.win_length, axis=1)[:, :: self.hop_length]
        windowed = frames[valid]
        windowed *= self.window
        return windowed

    def _mel_power(self, frames: np.ndarray) -> np.ndarray:
        """Mel power `(frames, num_mel_bins)` of windowed frames, in chunks that stay in cache."""
        mel = np.empty((len(frames), self.num_mel_bins), dtype=np.float32)
        for start in range(0, len(frames), _FRAMES_PER_CHUNK):
            # numpy's float32 FFT (librosa's) is accurate to ~1e-7 of the frame's energy even in bins 100 dB down,
            # where log(mel + 1e-6) magnifies errors; scipy's float32 FFT, faster, misses 1e-4 there.
            spectrum = np.fft.rfft(frames[start : start + _FRAMES_PER_CHUNK], n=self.n_fft, axis=-1)
            parts = spectrum.view(np.float32)
            np.square(parts, out=parts)
            mel[start : start + _FRAMES_PER_CHUNK] = (parts[:, 0::2] + parts[:, 1::2]) @ self.mel_filters
        return mel

    def _deltas(self, log_mel: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """librosa.feature.delta (Savitzky-Golay, order 1, `mode="interp"`) of each clip over its own frames.

        Inside a clip the delta is the least-squares slope over `delta_width` frames; within half a width of
        either end, `mode="interp"` repeats the slope of the first (last) full window. Clamping each frame's
        index to that range per clip keeps padded frames out of a clip's deltas.
        """
        from scipy.ndimage import correlate1d

        half = self.delta_width // 2
        offsets = np.arange(-half, half + 1, dtype=np.float32)
        slopes = correlate1d(log_mel, offsets / np.square(offsets).sum(), axis=1, mode="constant")
        index = np.minimum(np.arange(log_mel.shape[1]).clip(min=half)[None, :], lengths[:, None] - 1 - half)
        return np.take_along_axis(slopes, index[:, :, None], axis=1)


# `save_pretrained` copies this module next to the checkpoint (`trust_remote_code=True`).
CtalFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")
