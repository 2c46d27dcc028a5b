"""Model sections of the config: mistakes name the field at load."""

from __future__ import annotations

import pytest
import yaml

from llm_platform.config import ConfigError, load_config


def _load(tmp_path, **sections):
    path = tmp_path / "platform.yaml"
    path.write_text(
        yaml.safe_dump({"sources": [{"name": "docs", "location": str(tmp_path)}], **sections}), encoding="utf-8"
    )
    return load_config(path)


def test_a_real_model_and_the_tiny_lm_together_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match=r"base_model: .*either base_model.name_or_path .* or base_model.tiny"):
        _load(tmp_path, base_model={"name_or_path": "Qwen/Qwen2.5-0.5B", "tiny": {"hidden_size": 16, "num_heads": 2}})


def test_tiny_lm_is_chosen_only_when_configured(tmp_path):
    assert _load(tmp_path).base_model.tiny is None
    assert _load(tmp_path, base_model={"tiny": {}}).base_model.tiny is not None


def test_index_metrics_are_not_model_gates(tmp_path):
    with pytest.raises(ConfigError, match=r"gates.minimums: .*unknown metric\(s\) retrieval_hit_rate"):
        _load(tmp_path, gates={"minimums": {"retrieval_hit_rate": 0.5}})
    with pytest.raises(ConfigError, match=r"gates.beat_base: .*unknown metric\(s\) retrieval_mrr"):
        _load(tmp_path, gates={"beat_base": {"retrieval_mrr": 0.0}})


def test_sft_rule_limits_name_known_rules_and_keep_the_others(tmp_path):
    limits = _load(tmp_path, sft={"max_violation_share": {"no_pii": 0.0}}).sft.max_violation_share
    assert limits["no_pii"] == 0.0 and limits["instruction_length"] == 0.05
    with pytest.raises(ConfigError, match="unknown SFT rule"):
        _load(tmp_path, sft={"max_violation_share": {"no_typos": 0.1}})


def test_prompt_template_needs_the_instruction_placeholder(tmp_path):
    with pytest.raises(ConfigError, match=r"prompts.template: .*\{instruction\}"):
        _load(tmp_path, prompts={"template": "Answer this:"})


def test_prompt_template_file_is_relative_to_the_config(tmp_path):
    assert _load(tmp_path, prompts={"template_file": "prompt.txt"}).prompts.template_file == str(
        tmp_path / "prompt.txt"
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("rank", 0), ("dropout", 1.0), ("device", "tpu"), ("gradient_accumulation_steps", 0), ("num_processes", 0)],
)
def test_a_bad_training_setting_is_named_at_load(tmp_path, field, value):
    with pytest.raises(ConfigError, match=rf"training.{field}: "):
        _load(tmp_path, training={field: value})


def test_tiny_lm_width_must_divide_into_its_heads_at_load(tmp_path):
    with pytest.raises(
        ConfigError, match=r"base_model.tiny: .*hidden_size \(30\) must be divisible by num_heads \(4\)"
    ):
        _load(tmp_path, base_model={"tiny": {"hidden_size": 30, "num_heads": 4}})


def test_tiny_lm_vocabulary_must_hold_the_bytes_the_special_tokens_and_a_merge(tmp_path):
    with pytest.raises(ConfigError, match=r"base_model.tiny.vocab_size: .*greater than or equal to 260"):
        _load(tmp_path, base_model={"tiny": {"vocab_size": 259}})
    assert _load(tmp_path, base_model={"tiny": {"vocab_size": 260}}).base_model.tiny.vocab_size == 260
