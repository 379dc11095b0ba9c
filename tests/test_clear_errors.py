"""Mistakes that used to fail far from their cause now fail at once with a ValueError that names the field and the
fix: a folder of another family, an unknown ASR back-end, a sampling rate that is not an integer, text that is not
valid Unicode."""

from __future__ import annotations

import numpy as np
import pytest

from audiolang import CtalFeatureExtractor, DsclapFeatureExtractor, DsclapProcessor
from audiolang.data import load_asr
from audiolang.training import check_model_family


def test_a_folder_of_another_family_is_named(dsclap_checkpoint, tmp_path):
    assert check_model_family(str(dsclap_checkpoint), ("turbo", "dsclap")) == "dsclap"
    with pytest.raises(ValueError, match=r"holds a dsclap model, not ctal: pass --model_type dsclap"):
        check_model_family(str(dsclap_checkpoint), ("ctal",))
    with pytest.raises(ValueError, match="is not a saved model"):
        check_model_family(str(tmp_path), ("ctal",))


def test_an_unknown_asr_back_end_lists_the_valid_ones():
    with pytest.raises(ValueError) as error:
        load_asr("bogus")
    message = str(error.value)
    assert message.startswith("unknown ASR back-end 'bogus': use 'pocketsphinx', 'whisper-base'")
    assert "'faster-whisper:<CTranslate2 model folder>'" in message and "huggingface.co" not in message


@pytest.mark.parametrize("rate", ["16000", 16000.5, float("nan"), True])
def test_a_sampling_rate_must_be_an_integer(rate):
    clip = np.full(4000, 0.1, np.float32)
    for extractor in (DsclapFeatureExtractor(), CtalFeatureExtractor()):
        with pytest.raises(
            ValueError, match=r"`sampling_rate` must be an integer number of Hz, got .*16000`"
        ):
            extractor(clip, sampling_rate=rate)
    # An integral float or a numpy integer is a valid rate.
    assert DsclapFeatureExtractor()(clip, sampling_rate=np.int64(16_000))["input_values"][0].shape == (4000,)


def test_text_that_is_not_valid_unicode_is_named(dsclap_checkpoint):
    processor = DsclapProcessor.from_pretrained(dsclap_checkpoint)
    with pytest.raises(ValueError, match=r"`text\[1\]` is not valid Unicode: '\\ud83d' at character 5"):
        processor(text=["call mom", "call \ud83d"])
