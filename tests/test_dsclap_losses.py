"""audiolang.losses: InfoNCE, hard-negative matching, the DSCLAP and Turbo objectives, checked by hand and across
processes."""

from __future__ import annotations

import math
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from audiolang import (
    DsclapModel,
    dsclap_loss,
    gather_with_grad,
    hard_negative_indices,
    hard_negative_matching_loss,
    info_nce,
    info_nce_from_logits,
    symmetric_info_nce,
    turbo_loss,
)
from audiolang.training import gradient_cached_backward


def reference_info_nce(sim: list[list[float]], offset: int = 0) -> float:
    """Eq. 4 in plain Python: mean over rows of -log softmax at the positive column."""
    losses = [
        -math.log(math.exp(row[offset + i]) / sum(math.exp(value) for value in row))
        for i, row in enumerate(sim)
    ]
    return sum(losses) / len(losses)


def reference_matching(sim: list[list[float]], negatives: list[int], offset: int = 0) -> float:
    """Eq. 6 in plain Python: mean over rows of -log(e^pos / (e^pos + e^neg))."""
    losses = []
    for i, row in enumerate(sim):
        positive, negative = row[offset + i], row[negatives[i]]
        losses.append(-math.log(math.exp(positive) / (math.exp(positive) + math.exp(negative))))
    return sum(losses) / len(losses)


def transpose(matrix: list[list[float]]) -> list[list[float]]:
    return [list(column) for column in zip(*matrix, strict=True)]


def test_info_nce_from_logits_literal_value() -> None:
    # Both rows have their positive 2 above the only negative: loss = log(1 + e^-2).
    logits = torch.tensor([[2.0, 0.0], [1.0, 3.0]])
    assert info_nce_from_logits(logits).item() == pytest.approx(math.log1p(math.exp(-2.0)), abs=1e-6)


def test_info_nce_with_offset_matches_hand_computation() -> None:
    # Two local queries against four global keys, positives at columns 2 and 3 (rank 1 of 2).
    logits = [[0.5, -1.0, 2.0, 0.1], [1.5, 0.3, -0.2, 0.7]]
    got = info_nce_from_logits(torch.tensor(logits), positive_offset=2).item()
    assert got == pytest.approx(reference_info_nce(logits, offset=2), abs=1e-6)


def test_info_nce_scales_dot_products() -> None:
    query = F.normalize(torch.tensor([[1.0, 2.0], [-1.0, 0.5]]), dim=-1)
    keys = F.normalize(torch.tensor([[0.5, 1.0], [2.0, -1.0]]), dim=-1)
    sim = (3.0 * query @ keys.T).tolist()
    assert info_nce(query, keys, 3.0).item() == pytest.approx(reference_info_nce(sim), abs=1e-6)


def test_positive_offset_outside_keys_is_rejected() -> None:
    with pytest.raises(ValueError, match="positive_offset"):
        info_nce_from_logits(torch.zeros(2, 3), positive_offset=2)


HARD_LOGITS = [
    [5.0, 4.0, 1.0, 4.5],  # positive (col 0) is the maximum: the hardest *other* column is 3
    [0.0, 1.0, 3.0, 2.0],  # hardest negative 2
    [2.0, 9.0, 1.0, 0.0],  # hardest negative 1, far above the positive
    [7.0, 6.0, 5.0, 8.0],  # hardest negative 0
]


def test_k1_takes_the_hardest_non_matching_column() -> None:
    chosen = hard_negative_indices(torch.tensor(HARD_LOGITS), num_hard_negatives=1)
    assert chosen.tolist() == [3, 2, 1, 0]


def test_matching_loss_k1_matches_hand_computation() -> None:
    got = hard_negative_matching_loss(torch.tensor(HARD_LOGITS), num_hard_negatives=1).item()
    assert got == pytest.approx(reference_matching(HARD_LOGITS, [3, 2, 1, 0]), abs=1e-6)


def test_matching_loss_gradient_reaches_only_positive_and_hard_negative() -> None:
    logits = torch.tensor(HARD_LOGITS, requires_grad=True)
    hard_negative_matching_loss(logits).backward()
    touched = (logits.grad != 0).nonzero().tolist()
    assert sorted(touched) == sorted([[0, 0], [0, 3], [1, 1], [1, 2], [2, 2], [2, 1], [3, 3], [3, 0]])


def _top_k_negatives(logits: torch.Tensor, k: int, offset: int = 0) -> list[set[int]]:
    pools = []
    for i, row in enumerate(logits.tolist()):
        others = sorted((value, column) for column, value in enumerate(row) if column != offset + i)
        pools.append({column for _, column in others[-k:]})
    return pools


def test_k_greater_than_one_is_seeded_and_samples_within_top_k() -> None:
    logits = torch.randn(6, 6, generator=torch.Generator().manual_seed(0))
    pools = _top_k_negatives(logits, k=3)

    def draw(seed: int) -> list[int]:
        return hard_negative_indices(
            logits, num_hard_negatives=3, generator=torch.Generator().manual_seed(seed)
        ).tolist()

    assert draw(7) == draw(7)
    seen: list[set[int]] = [set() for _ in pools]
    for seed in range(60):
        for row, column in enumerate(draw(seed)):
            assert column in pools[row] and column != row
            seen[row].add(column)
    # Uniform over the pool: 60 draws reach every member of every row's top-3 (a miss has probability ~1e-10).
    assert seen == pools


def test_k_greater_than_one_draw_does_not_depend_on_the_number_of_processes() -> None:
    # Rank 1 of 2 sees rows 4..7 of the global logits; with the same seed it must pick what one process would.
    global_logits = torch.randn(8, 8, generator=torch.Generator().manual_seed(1))
    whole = hard_negative_indices(global_logits, 0, 3, torch.Generator().manual_seed(5))
    local = hard_negative_indices(global_logits[4:], 4, 3, torch.Generator().manual_seed(5))
    assert local.tolist() == whole[4:].tolist()


def test_pool_is_capped_and_a_single_pair_has_zero_matching_loss() -> None:
    chosen = hard_negative_indices(
        torch.randn(3, 3), num_hard_negatives=10, generator=torch.Generator().manual_seed(0)
    )
    assert all(column != row for row, column in enumerate(chosen.tolist()))
    single = torch.tensor([[3.0]], requires_grad=True)
    assert hard_negative_indices(single) is None
    loss = hard_negative_matching_loss(single)
    assert loss.item() == 0.0
    loss.backward()  # still part of the graph, so a batch of one trains without special-casing


def test_invalid_pool_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="num_hard_negatives"):
        hard_negative_indices(torch.zeros(2, 2), num_hard_negatives=0)


def test_dsclap_loss_matches_hand_computation() -> None:
    audio = F.normalize(torch.tensor([[1.0, 0.2], [0.3, -1.0], [-0.5, 0.5]]), dim=-1)
    text = F.normalize(torch.tensor([[0.9, 0.1], [-0.2, 0.8], [0.1, -1.0]]), dim=-1)
    scale = 4.0
    sim = (scale * audio @ text.T).tolist()

    def hardest(matrix: list[list[float]]) -> list[int]:
        return [max((v, c) for c, v in enumerate(row) if c != i)[1] for i, row in enumerate(matrix)]

    expected_a = reference_info_nce(sim)
    expected_t = reference_info_nce(transpose(sim))
    expected_a_star = reference_matching(sim, hardest(sim))
    expected_t_star = reference_matching(transpose(sim), hardest(transpose(sim)))

    out = dsclap_loss(audio, text, scale, contrastive_weight=0.3, matching_weight=0.7, num_hard_negatives=1)
    assert out.audio_contrastive_loss.item() == pytest.approx(expected_a, abs=1e-6)
    assert out.text_contrastive_loss.item() == pytest.approx(expected_t, abs=1e-6)
    assert out.audio_matching_loss.item() == pytest.approx(expected_a_star, abs=1e-6)
    assert out.text_matching_loss.item() == pytest.approx(expected_t_star, abs=1e-6)
    total = 0.3 * (expected_a + expected_t) + 0.7 * (expected_a_star + expected_t_star)
    assert out.loss.item() == pytest.approx(total, abs=1e-6)


def test_dsclap_loss_rejects_unpaired_embeddings() -> None:
    with pytest.raises(ValueError, match="Paired embeddings"):
        dsclap_loss(torch.zeros(3, 4), torch.zeros(2, 4), 1.0)


def test_symmetric_info_nce_contrasts_two_views_both_ways() -> None:
    generator = torch.Generator().manual_seed(0)
    view_1 = F.normalize(torch.randn(4, 8, generator=generator), dim=-1)
    view_2 = F.normalize(torch.randn(4, 8, generator=generator), dim=-1)
    loss_1, loss_2 = symmetric_info_nce(view_1, view_2, 1 / 0.05)
    assert loss_1.item() == pytest.approx(info_nce(view_1, view_2, 1 / 0.05).item(), abs=1e-6)
    assert loss_2.item() == pytest.approx(info_nce(view_2, view_1, 1 / 0.05).item(), abs=1e-6)


def test_gather_is_identity_outside_distributed_runs() -> None:
    tensor = torch.randn(3, 2)
    assert gather_with_grad(tensor) is tensor


# --- two processes (gloo) against one process on the same global batch -------------------------------------------

WORLD_SIZE = 2
GLOBAL_BATCH = 6
AUDIO_SAMPLES = 4000


def _functional_problem(inputs: dict[str, torch.Tensor], rows: slice) -> dict[str, torch.Tensor]:
    """Linear projections of fixed features, trained with `dsclap_loss` on `rows`; returns loss and gradients."""
    w_audio = inputs["w_audio"].clone().requires_grad_()
    w_text = inputs["w_text"].clone().requires_grad_()
    logit_scale = inputs["logit_scale"].clone().requires_grad_()
    audio = F.normalize(inputs["x_audio"][rows] @ w_audio, dim=-1)
    text = F.normalize(inputs["x_text"][rows] @ w_text, dim=-1)
    out = dsclap_loss(
        audio, text, logit_scale.exp(), num_hard_negatives=3, generator=torch.Generator().manual_seed(11)
    )
    out.loss.backward()
    return {
        "loss": out.loss.detach(),
        "matching": (out.audio_matching_loss + out.text_matching_loss).detach(),
        "grad.w_audio": w_audio.grad,
        "grad.w_text": w_text.grad,
        "grad.logit_scale": logit_scale.grad,
    }


def _turbo_problem(inputs: dict[str, torch.Tensor], rows: slice) -> dict[str, torch.Tensor]:
    """Two noisy views (standing in for two dropout passes) of linear projections, trained with `turbo_loss`."""
    w_audio = inputs["w_audio"].clone().requires_grad_()
    w_text = inputs["w_text"].clone().requires_grad_()
    views = [
        (
            F.normalize((inputs["x_audio"][rows] + inputs[f"noise_audio{v}"][rows]) @ w_audio, dim=-1),
            F.normalize((inputs["x_text"][rows] + inputs[f"noise_text{v}"][rows]) @ w_text, dim=-1),
        )
        for v in (1, 2)
    ]
    out = turbo_loss(views[0][0], views[0][1], views[1][0], views[1][1], scale=20.0)
    out.loss.backward()
    return {"loss": out.loss.detach(), "grad.w_audio": w_audio.grad, "grad.w_text": w_text.grad}


def _model_problem(checkpoint: str, inputs: dict[str, torch.Tensor], rows: slice) -> dict[str, torch.Tensor]:
    """One training step of a `DsclapModel` on `rows` of the global batch; returns loss and every gradient."""
    model = DsclapModel.from_pretrained(checkpoint).train()
    out = model(
        input_values=inputs["input_values"][rows],
        audio_attention_mask=inputs["audio_attention_mask"][rows],
        input_ids=inputs["input_ids"][rows],
        attention_mask=inputs["attention_mask"][rows],
    )
    out.loss.backward()
    grads = {f"grad.{name}": param.grad for name, param in model.named_parameters()}
    return {"loss": out.loss.detach(), **grads}


def _gradient_cached_model_problem(
    checkpoint: str, inputs: dict[str, torch.Tensor], rows: slice
) -> dict[str, torch.Tensor]:
    """`_model_problem` through gradient caching in micro-batches of 2 (a local batch of 3 leaves one of 1)."""
    model = DsclapModel.from_pretrained(checkpoint).train()
    keys = ("input_values", "audio_attention_mask", "input_ids", "attention_mask")
    out = gradient_cached_backward(model, {key: inputs[key][rows] for key in keys}, micro_batch_size=2)
    grads = {f"grad.{name}": param.grad for name, param in model.named_parameters()}
    return {"loss": out.loss, **grads}


def _distributed_worker(rank: int, port: int, folder: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD_SIZE)
    try:
        inputs = load_file(f"{folder}/inputs.safetensors")
        local = GLOBAL_BATCH // WORLD_SIZE
        rows = slice(rank * local, (rank + 1) * local)
        save_file(_functional_problem(inputs, rows), f"{folder}/functional_rank{rank}.safetensors")
        save_file(_turbo_problem(inputs, rows), f"{folder}/turbo_rank{rank}.safetensors")
        save_file(_model_problem(f"{folder}/model", inputs, rows), f"{folder}/model_rank{rank}.safetensors")
        cached = _gradient_cached_model_problem(f"{folder}/model", inputs, rows)
        save_file(cached, f"{folder}/cached_model_rank{rank}.safetensors")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def distributed_run(tmp_path_factory: pytest.TempPathFactory, dsclap_config_factory) -> Path:
    folder = tmp_path_factory.mktemp("dsclap_gloo")
    generator = torch.Generator().manual_seed(0)
    lengths = torch.tensor([4000, 2500, 3100, 4000, 1800, 3600])
    audio_mask = (torch.arange(AUDIO_SAMPLES)[None, :] < lengths[:, None]).long()
    text_mask = torch.ones(GLOBAL_BATCH, 7, dtype=torch.long)
    text_mask[1, 4:] = 0
    text_mask[4, 5:] = 0
    inputs = {
        "x_audio": torch.randn(GLOBAL_BATCH, 5, generator=generator),
        "x_text": torch.randn(GLOBAL_BATCH, 4, generator=generator),
        "w_audio": torch.randn(5, 3, generator=generator),
        "w_text": torch.randn(4, 3, generator=generator),
        "logit_scale": torch.tensor(math.log(1 / 0.07)),
        **{f"noise_audio{v}": 0.3 * torch.randn(GLOBAL_BATCH, 5, generator=generator) for v in (1, 2)},
        **{f"noise_text{v}": 0.3 * torch.randn(GLOBAL_BATCH, 4, generator=generator) for v in (1, 2)},
        "input_values": torch.randn(GLOBAL_BATCH, AUDIO_SAMPLES, generator=generator) * audio_mask,
        "audio_attention_mask": audio_mask,
        "input_ids": torch.randint(5, 40, (GLOBAL_BATCH, 7), generator=generator) * text_mask,
        "attention_mask": text_mask,
    }
    save_file(inputs, str(folder / "inputs.safetensors"))
    torch.manual_seed(0)
    DsclapModel(dsclap_config_factory()).save_pretrained(folder / "model")
    mp.start_processes(
        _distributed_worker, args=(_free_port(), str(folder)), nprocs=WORLD_SIZE, start_method="spawn"
    )
    return folder


def _assert_ranks_match_single_process(folder: Path, name: str, single: dict[str, torch.Tensor]) -> None:
    ranks = [load_file(str(folder / f"{name}_rank{rank}.safetensors")) for rank in range(WORLD_SIZE)]
    assert ranks[0]["loss"].item() != pytest.approx(ranks[1]["loss"].item())  # the halves really differ
    # The global loss is the mean of the local losses; data-parallel training averages the local gradients, and
    # that average must be the single-process gradient on the global batch.
    for key, expected in single.items():
        averaged = sum(rank[key] for rank in ranks) / WORLD_SIZE
        torch.testing.assert_close(averaged, expected, atol=2e-5, rtol=1e-4, msg=f"{name}: {key}")


def test_two_processes_match_one_process_functional(distributed_run: Path) -> None:
    inputs = load_file(str(distributed_run / "inputs.safetensors"))
    single = _functional_problem(inputs, slice(None))
    assert single["matching"].item() > 0
    _assert_ranks_match_single_process(distributed_run, "functional", single)


def test_two_processes_match_one_process_turbo(distributed_run: Path) -> None:
    inputs = load_file(str(distributed_run / "inputs.safetensors"))
    _assert_ranks_match_single_process(distributed_run, "turbo", _turbo_problem(inputs, slice(None)))


def test_two_processes_match_one_process_model(distributed_run: Path) -> None:
    inputs = load_file(str(distributed_run / "inputs.safetensors"))
    single = _model_problem(str(distributed_run / "model"), inputs, slice(None))
    _assert_ranks_match_single_process(distributed_run, "model", single)


def test_two_processes_with_gradient_caching_match_one_process_on_the_whole_batch(
    distributed_run: Path,
) -> None:
    """GradCache (Gao et al. 2021) across processes: each process's cached loss step gathers the other's embeddings;
    the averaged gradients are those of one process back-propagating the whole global batch in one pass."""
    inputs = load_file(str(distributed_run / "inputs.safetensors"))
    single = _model_problem(str(distributed_run / "model"), inputs, slice(None))
    _assert_ranks_match_single_process(distributed_run, "cached_model", single)
