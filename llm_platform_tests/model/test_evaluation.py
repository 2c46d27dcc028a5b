"""Model and retrieval metrics."""

from __future__ import annotations

import math

import pytest
import torch

from llm_platform.index.retrieval import retrieval_metrics
from llm_platform.model.base_model import load_base_model
from llm_platform.model.batching import collate, encode_example, pad_id_of
from llm_platform.model.evaluation import bleu, generate_answers, perplexity, rouge_l
from llm_platform.model.training import load_adapter


@pytest.fixture(scope="module")
def tuned_model(tiny_base, tuned):
    return load_adapter(tiny_base.path, tuned.adapter_dir)


def test_perplexity_is_exp_of_the_models_own_response_loss(tiny_base, curated_examples):
    model, tokenizer = load_base_model(tiny_base.path)
    example = curated_examples[0]
    batch = collate([encode_example(tokenizer, *example, max_length=128)], pad_id_of(tokenizer))
    with torch.no_grad():
        expected = math.exp(model(**batch).loss.item())
    assert perplexity(model, tokenizer, [example], max_length=128) == pytest.approx(expected, rel=1e-5)


def test_fine_tuning_lowers_perplexity_on_its_own_data(tiny_base, tuned_model, curated_examples):
    base, tokenizer = load_base_model(tiny_base.path)
    tuned, _ = tuned_model
    assert perplexity(tuned, tokenizer, curated_examples, max_length=128) < perplexity(
        base, tokenizer, curated_examples, max_length=128
    )


def test_generation_is_deterministic_and_unaffected_by_left_padding(tuned_model, curated_examples):
    model, tokenizer = tuned_model
    instructions = [q for q, _ in curated_examples[:3]] + ["Why?"]
    batched = generate_answers(model, tokenizer, instructions, max_new_tokens=12)
    one_by_one = [generate_answers(model, tokenizer, [q], max_new_tokens=12)[0] for q in instructions]
    assert batched == one_by_one == generate_answers(model, tokenizer, instructions, max_new_tokens=12)
    assert any(answer.strip() for answer in batched), "a tuned model should produce some text"


def test_rouge_l_is_one_for_identical_text_and_zero_for_disjoint_text():
    assert rouge_l(["a list is mutable"], ["a list is mutable"]) == pytest.approx(1.0)
    assert rouge_l(["tuples never change"], ["dictionaries map keys"]) == 0.0
    partial = rouge_l(["a list is a mutable sequence"], ["a list is mutable"])
    assert 0.0 < partial < 1.0


def test_bleu_is_scaled_to_zero_one():
    sentence = "the with statement closes the file when the block ends"
    assert bleu([sentence], [sentence]) == pytest.approx(1.0)
    assert bleu(["completely unrelated words here today"], [sentence]) == 0.0


def test_text_metrics_refuse_unpaired_inputs():
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        rouge_l(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="empty"):
        bleu([], [])


def test_retrieval_metrics_on_a_hand_made_ranking():
    ranked = [["a", "b", "c"], ["d", "e", "f"], ["g", "h", "i"], ["j", "k", "l"]]
    relevant = ["a", "f", "x", "k"]
    hit_rate, mrr = retrieval_metrics(ranked, relevant, k=3)
    assert hit_rate == pytest.approx(3 / 4)
    assert mrr == pytest.approx((1 + 1 / 3 + 0 + 1 / 2) / 4)
    assert retrieval_metrics(ranked, relevant, k=1) == pytest.approx((1 / 4, 1 / 4))


def test_retrieval_metrics_refuse_unpaired_inputs_and_bad_k():
    with pytest.raises(ValueError, match="2 rankings but 1 relevant"):
        retrieval_metrics([["a"], ["b"]], ["a"], k=1)
    with pytest.raises(ValueError, match="k must be >= 1"):
        retrieval_metrics([["a"]], ["a"], k=0)
