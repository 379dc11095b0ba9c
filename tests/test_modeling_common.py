"""The model contract every family keeps, on each model class of each family (`model_tester.TESTERS`), in the spirit
of transformers' `ModelTesterMixin`: save/load round trip (own class and Auto class), eager = SDPA attention, a row
alone = the same row in a padded batch, tuple = dict outputs, gradient checkpointing changes neither the loss nor the
gradients, and the saved `auto_map` names every class of the family, each of which loads the folder.

A family that fails a check by design gets that one parametrisation in `BY_DESIGN` as a strict xfail, with the
reason; none does today.
"""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import torch
import transformers
from model_tester import TESTERS, FamilyTester, ModelCase
from transformers import PreTrainedConfig
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.utils import ModelOutput

# `{(family, model class, test): reason}`: checks a family fails by design, run as strict xfails.
BY_DESIGN: dict[tuple[str, str, str], str] = {}


def cases(test: str) -> list[Any]:
    params = []
    for tester in TESTERS:
        for case in tester.cases:
            reason = BY_DESIGN.get((tester.name, case.id, test))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            params.append(pytest.param(tester, case, id=f"{tester.name}-{case.id}", marks=marks))
    return params


def run(model: torch.nn.Module, inputs: dict[str, Any], **kwargs: Any) -> Any:
    """The forward under `no_grad`, its random draws (hard negatives) seeded."""
    torch.manual_seed(0)
    with torch.no_grad():
        return model(**inputs, **kwargs)


def as_tuple(value: Any) -> Any:
    """A (nested) output as plain tuples: a `ModelOutput` becomes its non-None fields in declaration order."""
    if isinstance(value, ModelOutput):
        fields = [getattr(value, f.name) for f in dataclasses.fields(value)]
        return tuple(as_tuple(v) for v in fields if v is not None)
    if isinstance(value, tuple):
        return tuple(as_tuple(v) for v in value)
    return value


def assert_same(
    actual: Any, expected: Any, atol: float = 0.0, rtol: float = 0.0, path: str = "output"
) -> None:
    actual, expected = as_tuple(actual), as_tuple(expected)
    if isinstance(expected, tuple):
        assert isinstance(actual, tuple) and len(actual) == len(expected), path
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same(a, e, atol, rtol, f"{path}[{index}]")
    else:
        torch.testing.assert_close(actual, expected, atol=atol, rtol=rtol, msg=path)


def loss_inputs(tester: FamilyTester, case: ModelCase) -> dict[str, Any]:
    inputs = tester.prepare_inputs()
    return {**inputs, **tester.targets(case, inputs)}


# --- save / load -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tester, case", cases("save_load"))
def test_save_load_round_trip(tester: FamilyTester, case: ModelCase, tmp_path: Path) -> None:
    model = tester.build(case).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and not list(tmp_path.glob("*.bin"))
    inputs = loss_inputs(tester, case)
    expected = run(model, inputs)
    for loader in (case.model_class, case.auto_class):
        reloaded, info = loader.from_pretrained(tmp_path, output_loading_info=True)
        assert type(reloaded) is case.model_class, loader
        assert not info["missing_keys"] and not info["unexpected_keys"], info
        state = reloaded.state_dict()
        assert state.keys() == model.state_dict().keys()
        for name, value in model.state_dict().items():
            torch.testing.assert_close(state[name], value, atol=0, rtol=0, msg=name)
        assert_same(run(reloaded.eval(), inputs), expected)


# --- attention implementations ---------------------------------------------------------------------------------------


def attention_implementations(model: torch.nn.Module) -> set[str]:
    """What the model and every submodule holding a config read at call time (audiolang's layers and the towers)."""
    return {
        module.config._attn_implementation
        for module in model.modules()
        if isinstance(getattr(module, "config", None), PreTrainedConfig)
    }


@pytest.mark.parametrize("tester, case", cases("eager_sdpa"))
def test_eager_and_sdpa_attention_agree(tester: FamilyTester, case: ModelCase, tmp_path: Path) -> None:
    tester.build(case).save_pretrained(tmp_path)
    inputs = loss_inputs(tester, case)
    outputs = {}
    for implementation in ("eager", "sdpa"):
        model = case.model_class.from_pretrained(tmp_path, attn_implementation=implementation).eval()
        assert attention_implementations(model) == {implementation}
        outputs[implementation] = run(model, inputs)
    assert_same(outputs["sdpa"], outputs["eager"], atol=1e-5, rtol=1e-5)
    # Switching a loaded model reaches every part too.
    model.set_attn_implementation("eager")
    assert attention_implementations(model) == {"eager"}
    assert_same(run(model, inputs), outputs["eager"], atol=1e-6, rtol=1e-6)


# --- batching --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tester, case", cases("batch_single"))
def test_a_row_alone_equals_the_row_in_a_padded_batch(tester: FamilyTester, case: ModelCase) -> None:
    model = tester.build(case).eval()
    inputs = tester.prepare_inputs(batch_size=3)
    for mask in {mask for mask, _ in tester.padding.values()}:
        assert (inputs[mask][:-1].sum(-1) < inputs[mask].shape[1]).all(), f"rows 0-1 carry no {mask} padding"
    together = run(model, inputs)
    for row in range(3):
        alone = run(model, tester.row_alone(inputs, row))
        for name, mask in case.row_outputs.items():
            expected = together[name][row]
            if mask is not None:
                expected = expected[: int(inputs[mask][row].sum())]
            torch.testing.assert_close(
                alone[name][0], expected, atol=1e-5, rtol=1e-5, msg=f"{name}, row {row}"
            )


# --- outputs ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tester, case", cases("tuple_dict"))
def test_tuple_and_dict_outputs_agree(tester: FamilyTester, case: ModelCase) -> None:
    model = tester.build(case).eval()
    inputs = loss_inputs(tester, case)
    as_dict, plain = run(model, inputs), run(model, inputs, return_dict=False)
    assert isinstance(as_dict, ModelOutput) and type(plain) is tuple
    assert_same(plain, as_dict.to_tuple())
    # The order is the output class's field order, without the fields left empty.
    present = [f.name for f in dataclasses.fields(as_dict) if getattr(as_dict, f.name) is not None]
    assert list(as_dict.keys()) == present and len(plain) == len(present)
    for index, name in enumerate(present):
        assert_same(plain[index], as_dict[name], path=name)


# --- gradient checkpointing ------------------------------------------------------------------------------------------


def scalar_loss(output: ModelOutput) -> torch.Tensor:
    """The output's loss, or for a backbone without one the mean square of every floating-point output."""
    if output.get("loss") is not None:
        return output.loss
    tensors = [t for t in as_tuple(output) if isinstance(t, torch.Tensor) and t.is_floating_point()]
    return sum(t.pow(2).mean() for t in tensors)


@pytest.mark.parametrize("tester, case", cases("gradient_checkpointing"))
def test_gradient_checkpointing_gives_the_same_loss_and_gradients(
    tester: FamilyTester, case: ModelCase
) -> None:
    inputs = loss_inputs(tester, case)

    def train_step(
        checkpointing: bool,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor | None], dict[str, int]]:
        model = tester.build(case).train()
        if checkpointing:
            model.activation_checkpointing_enable()
        layers = {n: m for n, m in model.named_modules() if isinstance(m, GradientCheckpointingLayer)}
        assert layers and all(layer.gradient_checkpointing == checkpointing for layer in layers.values())
        # Calls of the linear maps and convolutions inside each layer, which the backward pass's recomputation calls again.
        calls = dict.fromkeys(layers, 0)
        for name, layer in layers.items():
            for linear in (m for m in layer.modules() if isinstance(m, torch.nn.Linear | torch.nn.Conv1d)):
                linear.register_forward_hook(lambda *_, name=name: calls.update({name: calls[name] + 1}))
        torch.manual_seed(0)
        loss = scalar_loss(model(**inputs))
        loss.backward()
        grads = {name: p.grad for name, p in model.named_parameters() if p.requires_grad}
        return loss.detach(), grads, calls

    loss, grads, calls = train_step(False)
    checkpointed_loss, checkpointed_grads, checkpointed_calls = train_step(True)
    # Every checkpointed layer runs again in the backward pass (up to the activations it did not keep).
    assert {name for name, count in calls.items() if count and checkpointed_calls[name] <= count} == set()
    assert any(calls.values())
    torch.testing.assert_close(checkpointed_loss, loss, atol=1e-6, rtol=1e-5)
    assert {n for n, g in checkpointed_grads.items() if g is None} == {
        n for n, g in grads.items() if g is None
    }
    assert any(g is not None for g in grads.values())
    for name, grad in grads.items():
        if grad is not None:
            torch.testing.assert_close(checkpointed_grads[name], grad, atol=1e-6, rtol=1e-5, msg=name)


# --- auto_map --------------------------------------------------------------------------------------------------------


def registered_auto_classes(config_class: type) -> set[str]:
    """The transformers `AutoModel*` classes that `import audiolang` registered for `config_class`."""
    return {
        name
        for name in dir(transformers)
        if name.startswith("AutoModel")
        and config_class in getattr(getattr(transformers, name), "_model_mapping", {})
    }


@pytest.mark.parametrize("tester, case", cases("auto_map"))
def test_saved_auto_map_names_every_class_of_the_family(
    tester: FamilyTester, case: ModelCase, tmp_path: Path
) -> None:
    """Whichever class was saved: `auto_map` has `AutoConfig` and every registered Auto model class, each names a
    class that the copied module defines, and that Auto class loads the folder as that class."""
    model = tester.build(case)
    model.save_pretrained(tmp_path)
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert set(auto_map) == {"AutoConfig", *registered_auto_classes(type(model.config))}
    assert case.auto_class.__name__ in auto_map
    for auto, reference in auto_map.items():
        module, name = reference.split(".")
        tree = ast.parse((tmp_path / f"{module}.py").read_text())
        assert name in {node.name for node in tree.body if isinstance(node, ast.ClassDef)}, reference
        # A head whose same-named layer has another shape in the saved head (lrat's x-vector and sequence
        # classifiers both have a `classifier`) loads as transformers' heads do: that layer newly initialised.
        loaded = type(getattr(transformers, auto).from_pretrained(tmp_path, ignore_mismatched_sizes=True))
        assert (loaded.__module__, loaded.__name__) == (f"audiolang.{module}", name), auto
