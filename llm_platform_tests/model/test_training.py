"""LoRA training: learning, response-only loss, reloading, checkpoints and resume."""

from __future__ import annotations

import dataclasses
import os

import pytest
import torch

from llm_platform.model.base_model import load_base_model
from llm_platform.model.batching import collate, encode_example, pad_id_of
from llm_platform.model.prompts import DEFAULT_PROMPT, encode_prompt
from llm_platform.model.training import load_adapter, train_lora
from llm_platform.model.training_request import TrainingInterrupted, TrainingRequest
from llm_platform_tests.model.conftest import LORA, lora


def _full_batch_loss(model, tokenizer, examples) -> float:
    rows = [encode_example(tokenizer, q, a, max_length=LORA.max_length) for q, a in examples]
    with torch.no_grad():
        return model(**collate(rows, pad_id_of(tokenizer))).loss.item()


def _checkpoints(output_dir: str) -> list[str]:
    return sorted(os.listdir(os.path.join(output_dir, "checkpoints")))


def test_training_loss_falls(tuned):
    assert tuned.status == "trained" and tuned.steps == 15 == len(tuned.losses)
    # Every epoch sees the same 40 examples, so epoch means compare like with like.
    epoch_means = [sum(tuned.losses[i : i + 5]) / 5 for i in (0, 5, 10)]
    assert epoch_means[0] > epoch_means[1] > epoch_means[2]
    assert epoch_means[2] < epoch_means[0] - 0.05


def test_result_reports_cpu_fp32_and_throughput(tuned):
    assert (tuned.device, tuned.dtype) == ("cpu", "float32")
    assert tuned.tokens_seen > 0 and tuned.tokens_per_second > 0


def test_only_response_tokens_carry_loss(tiny_base):
    _, tokenizer = load_base_model(tiny_base.path)
    prompt = encode_prompt(DEFAULT_PROMPT, tokenizer, "What is a set?")
    ids, labels = encode_example(tokenizer, "What is a set?", "Unique items.", max_length=128)
    assert ids[: len(prompt)] == prompt and labels[: len(prompt)] == [-100] * len(prompt)
    assert labels[len(prompt) :] == ids[len(prompt) :] and ids[-1] == tokenizer.eos_token_id


def test_long_prompts_keep_bos_the_response_marker_and_room_for_the_answer(tiny_base):
    _, tokenizer = load_base_model(tiny_base.path)
    instruction = "Explain " + "the list type " * 50
    prompt = encode_prompt(DEFAULT_PROMPT, tokenizer, instruction)
    ids, labels = encode_example(tokenizer, instruction, "Lists are mutable.", max_length=64)
    answer = tokenizer("Lists are mutable.", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert len(prompt) > 64 and len(ids) <= 64 and ids[0] == tokenizer.bos_token_id
    assert ids[-len(answer) :] == answer == labels[-len(answer) :]
    assert ids[-len(answer) - 5 : -len(answer)] == prompt[-5:]


def test_reloaded_adapter_reproduces_the_in_memory_model(tiny_base, curated_examples, lora_request, tmp_path):
    # One batch holds every example, so the loss logged at step 3 is the full-data
    # loss of the in-memory weights after step 2, which checkpoint step-2 must give back.
    config = lora(batch_size=len(curated_examples), epochs=4, checkpoint_every_steps=2)
    result = train_lora(dataclasses.replace(lora_request, config=config))
    at_step_2, tokenizer = load_adapter(tiny_base.path, str(tmp_path / "checkpoints" / "step-2"))
    assert _full_batch_loss(at_step_2, tokenizer, curated_examples) == pytest.approx(result.losses[2], rel=1e-5)
    final, _ = load_adapter(tiny_base.path, result.adapter_dir)
    at_step_4, _ = load_adapter(tiny_base.path, str(tmp_path / "checkpoints" / "step-4"))
    base, _ = load_base_model(tiny_base.path)
    batch = collate([encode_example(tokenizer, q, a, max_length=64) for q, a in curated_examples[:4]], 0)
    with torch.no_grad():
        logits = [
            m(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            for m in (final, at_step_4, base)
        ]
    assert torch.allclose(logits[0], logits[1], atol=1e-6)
    assert not torch.allclose(logits[0], logits[2], atol=1e-3)


def test_interrupted_run_resumes_from_its_last_checkpoint(lora_request, tmp_path):
    # Dropout on, so the resumed run matches only if the RNG state came back too.
    request = dataclasses.replace(lora_request, config=lora(dropout=0.1))
    uninterrupted = train_lora(dataclasses.replace(request, output_dir=str(tmp_path / "whole")))
    split = dataclasses.replace(request, output_dir=str(tmp_path / "split"))
    with pytest.raises(TrainingInterrupted, match="step-8") as stopped:
        train_lora(dataclasses.replace(split, stop_after_steps=10))
    assert stopped.value.step == 10
    resumed = train_lora(split)
    assert (resumed.status, resumed.resumed_from_step, resumed.steps) == ("resumed", 8, uninterrupted.steps)
    assert resumed.losses == pytest.approx(uninterrupted.losses, rel=1e-5)
    assert resumed.tokens_seen == uninterrupted.tokens_seen


def test_only_the_last_two_checkpoints_are_kept_and_no_partial_ones(tuned):
    assert _checkpoints(os.path.dirname(tuned.adapter_dir)) == ["step-12", "step-8"]


def test_resume_refuses_a_checkpoint_from_other_training_data(curated_examples, lora_request):
    with pytest.raises(TrainingInterrupted):
        train_lora(dataclasses.replace(lora_request, stop_after_steps=4))
    with pytest.raises(ValueError, match="new output_dir or delete its checkpoints"):
        train_lora(dataclasses.replace(lora_request, examples=curated_examples[:-1]))


def test_request_names_the_field_it_rejects(lora_request):
    with pytest.raises(ValueError, match="TrainingRequest.examples"):
        dataclasses.replace(lora_request, examples=[])
    with pytest.raises(ValueError, match="TrainingRequest.stop_after_steps"):
        dataclasses.replace(lora_request, stop_after_steps=0)


def test_a_request_reads_back_from_its_job_file_text_unchanged(lora_request):
    request = dataclasses.replace(
        lora_request, config=lora(num_processes=2), base_revision="1" * 40, stop_after_steps=3
    )
    assert TrainingRequest.from_json(request.to_json()) == request


def test_asking_for_cuda_without_a_gpu_says_what_to_do(lora_request):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present; the error applies only without one")
    with pytest.raises(ValueError, match="use 'auto' or 'cpu'"):
        train_lora(dataclasses.replace(lora_request, config=lora(device="cuda")))


def test_gradient_accumulation_trains_the_same_global_batch(lora_request, tuned):
    # Each micro-batch's loss is divided by the label tokens of the whole batch, so four
    # micro-batches of two give the gradient one batch of eight gives, up to float rounding.
    config = lora(gradient_accumulation_steps=4)
    accumulated = train_lora(dataclasses.replace(lora_request, config=config))
    assert accumulated.losses == pytest.approx(tuned.losses, rel=1e-4)


def test_gradient_checkpointing_changes_memory_not_the_result(lora_request, tuned):
    config = lora(gradient_checkpointing=True)
    checkpointed = train_lora(dataclasses.replace(lora_request, config=config))
    assert checkpointed.losses == pytest.approx(tuned.losses, rel=1e-5)


def test_length_grouped_batches_hold_less_padding(lora_request, tuned):
    config = lora(group_by_length=False, epochs=1)
    shuffled = train_lora(dataclasses.replace(lora_request, config=config))
    assert tuned.padding_share < shuffled.padding_share / 2
