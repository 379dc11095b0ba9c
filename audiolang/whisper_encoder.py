"""Whisper's encoder for variable-length, padded batches: the audio tower of the dual-encoder families.

transformers' `WhisperEncoder` only accepts exactly 30 s of log-mel frames (3,000) and ignores attention masks, so
a 3 s clip costs as much as a 30 s one and a clip embeds differently alone and inside a padded batch.
`VariableLengthWhisperEncoder` has the same modules and state-dict keys (a converted Whisper checkpoint's
`model.encoder.*` loads into it key for key) and differs only in its forward:

- it takes any number of frames up to `2 * max_source_positions` (30 s) and slices the position table to the
  sequence, as the original Whisper does for shorter inputs;
- it honours a frame-level `attention_mask` (right padding): the padded frames are zeroed before and after the first
  convolution, so that the convolution stem sees what it sees at the end of a lone clip, and they are masked out of
  every self-attention layer (through transformers' `create_bidirectional_mask`, in the form the configured
  attention implementation takes; eager and SDPA are tested to agree).

A clip therefore has the same hidden states alone and inside a padded batch. A flat sibling of the modeling modules
(imports nothing from `audiolang`), so that it travels with a checkpoint loaded through `trust_remote_code=True`.
"""

import torch
from torch import nn
from transformers import WhisperConfig
from transformers import initialization as init
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_outputs import BaseModelOutput
from transformers.models.whisper.modeling_whisper import WhisperEncoder, WhisperPreTrainedModel, sinusoids
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs
from transformers.utils.generic import merge_with_config_defaults
from transformers.utils.output_capturing import capture_outputs

__all__ = ["VariableLengthWhisperEncoder"]


class VariableLengthWhisperEncoder(WhisperEncoder):
    """Whisper's encoder for inputs of any length up to 30 s, with padding masked inside self-attention.

    Same modules, parameters and state-dict keys as `WhisperEncoder`; see the module docstring for what the forward
    adds. Build it from a `WhisperConfig`, or from any loaded Whisper model (the decoder is dropped) with
    [`~VariableLengthWhisperEncoder.from_model`].

    Args:
        config ([`WhisperConfig`]): The Whisper configuration; only the encoder fields are used.
    """

    config: WhisperConfig

    @classmethod
    def from_model(cls, model: WhisperPreTrainedModel) -> "VariableLengthWhisperEncoder":
        """This encoder with the weights, config and dtype of `model`'s encoder (`model` is a `WhisperEncoder`,
        `WhisperModel`, `WhisperForConditionalGeneration`, `WhisperForAudioClassification`, ...)."""
        source = model.get_encoder()
        encoder = cls(source.config)
        # Strict: the state-dict keys are the same by construction.
        encoder.load_state_dict(source.state_dict())
        return encoder.to(source.dtype)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        # WhisperPreTrainedModel writes the sinusoids when it initialises the whole encoder; a checkpoint that lacks
        # only the position table gets `embed_positions` initialised alone, which must not leave it random.
        super()._init_weights(module)
        if module is self.embed_positions:
            init.copy_(module.weight, sinusoids(*module.weight.shape))

    @property
    def max_input_frames(self) -> int:
        """The longest input in mel frames: 3,000 (30 s) for every released Whisper."""
        return self.max_source_positions * self.conv1.stride[0] * self.conv2.stride[0]

    def freeze_feature_encoder(self) -> None:
        """Fix the convolution stem (`conv1`, `conv2`), as wav2vec2's `freeze_feature_encoder` fixes its
        convolutional feature encoder. The position table is always fixed."""
        self.conv1.requires_grad_(False)
        self.conv2.requires_grad_(False)

    def _get_feature_vector_attention_mask(
        self, feature_vector_length: int, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """`(batch, feature_vector_length)` boolean mask of the encoder positions of the real (right-padded) frames
        in the frame mask `attention_mask`: the stride-2 convolution keeps `(frames - 1) // 2 + 1` of them. Same
        name and contract as wav2vec2's, so that the dual encoders pool both kinds of tower alike."""
        lengths = self._get_feat_extract_output_lengths(attention_mask.sum(-1))
        positions = torch.arange(feature_vector_length, device=attention_mask.device)
        return positions[None, :] < lengths[:, None]

    @merge_with_config_defaults
    @capture_outputs
    def forward(
        self,
        input_features: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutput:
        r"""
        Args:
            input_features (`torch.Tensor` of shape `(batch_size, num_mel_bins, frames)`):
                Log-mel spectrograms (`WhisperFeatureExtractor`'s), right-padded to the longest clip of the batch;
                `frames <= 2 * config.max_source_positions` (3,000, i.e. 30 s). No 30 s padding is needed.
            attention_mask (`torch.Tensor` of shape `(batch_size, frames)`, *optional*):
                1 on real frames and 0 on padding (a prefix of 1s per row). Without it every frame is real.
        """
        frames = input_features.shape[-1]
        if frames > self.max_input_frames:
            raise ValueError(
                f"`input_features` has {frames} frames, more than Whisper's limit of {self.max_input_frames} "
                f"({self.max_source_positions} positions after the stride-2 convolution): split or truncate the audio "
                "to 30 s."
            )
        encoder_mask = None
        if attention_mask is None:
            hidden_states = nn.functional.gelu(self.conv1(input_features))
        else:
            frame_mask = attention_mask[:, None, :].to(input_features.dtype)
            # Zeroing the padding before and after `conv1` makes every real position's receptive field read zeros
            # past the clip's end, which is what the convolutions' own zero padding gives a clip alone.
            hidden_states = nn.functional.gelu(self.conv1(input_features * frame_mask)) * frame_mask
        hidden_states = nn.functional.gelu(self.conv2(hidden_states)).permute(0, 2, 1)
        if attention_mask is not None:
            encoder_mask = self._get_feature_vector_attention_mask(hidden_states.shape[1], attention_mask)

        hidden_states = hidden_states + self.embed_positions.weight[: hidden_states.shape[1]]
        hidden_states = nn.functional.dropout(hidden_states, p=self.dropout, training=self.training)
        attention_bias = create_bidirectional_mask(
            config=self.config, inputs_embeds=hidden_states, attention_mask=encoder_mask
        )
        for encoder_layer in self.layers:
            # LayerDrop (https://huggingface.co/papers/1909.11556), as in WhisperEncoder.
            if self.training and self.layerdrop > 0.0 and torch.rand([]) < self.layerdrop:
                continue
            hidden_states = encoder_layer(hidden_states, attention_bias, **kwargs)
        return BaseModelOutput(last_hidden_state=self.layer_norm(hidden_states))
