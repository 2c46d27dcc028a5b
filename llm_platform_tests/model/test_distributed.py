"""`training.num_processes` > 1: the same loop under torchrun, two gloo processes on CPU."""

from __future__ import annotations

import dataclasses
import os

import pytest

from llm_platform.model.training import load_adapter, train_lora
from llm_platform.model.training_request import TrainingInterrupted, TrainingRequest
from llm_platform_tests.model.conftest import LORA, lora

# Two processes sum the same token losses in another order (and gloo all-reduces in
# float32), so losses agree with one process to float rounding, far inside this bound.
DDP_REL_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def two_processes(tiny_base, curated_examples, tmp_path_factory):
    steps: list[tuple[int, float]] = []
    output = tmp_path_factory.mktemp("ddp")
    request = TrainingRequest(
        base_model_dir=tiny_base.path,
        examples=curated_examples,
        output_dir=str(output),
        config=lora(num_processes=2, device="cpu"),
    )
    result = train_lora(request, on_step=lambda step, loss: steps.append((step, loss)))
    return result, steps


def test_two_processes_train_the_same_global_batches_as_one(two_processes, tuned):
    result, _ = two_processes
    assert (result.num_processes, result.steps) == (2, tuned.steps)
    assert result.losses == pytest.approx(tuned.losses, rel=DDP_REL_TOLERANCE)
    assert result.tokens_seen == tuned.tokens_seen


def test_each_step_reaches_on_step_in_the_launching_process(two_processes):
    result, steps = two_processes
    assert [step for step, _ in steps] == list(range(1, result.steps + 1))
    assert [loss for _, loss in steps] == result.losses


def test_rank_zero_saves_an_adapter_that_loads(two_processes, tiny_base):
    result, _ = two_processes
    model, _ = load_adapter(tiny_base.path, result.adapter_dir)
    assert model.peft_config["default"].r == LORA.rank


def test_an_interrupted_distributed_run_resumes_exactly(lora_request, two_processes, tmp_path):
    request = dataclasses.replace(lora_request, config=lora(num_processes=2, device="cpu"))
    with pytest.raises(TrainingInterrupted, match="step-8") as stopped:
        train_lora(dataclasses.replace(request, stop_after_steps=10))
    assert stopped.value.step == 10 and os.path.isdir(tmp_path / "checkpoints" / "step-8")
    resumed = train_lora(request)
    assert (resumed.status, resumed.resumed_from_step) == ("resumed", 8)
    assert resumed.losses == pytest.approx(two_processes[0].losses, rel=1e-5)


def test_a_checkpoint_of_one_process_is_refused_by_two_and_the_log_says_why(lora_request):
    with pytest.raises(TrainingInterrupted):
        train_lora(dataclasses.replace(lora_request, config=lora(num_processes=1), stop_after_steps=4))
    with pytest.raises(
        RuntimeError,
        match="torchrun with 2 processes failed .*torchrun.log; rank-[01]: "
        "ValueError: Checkpoint .* number of processes",
    ):
        train_lora(dataclasses.replace(lora_request, config=lora(num_processes=2, device="cpu")))
