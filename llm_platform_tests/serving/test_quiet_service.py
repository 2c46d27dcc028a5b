"""The service's output is its own: a notice about the tiny model first,
no library progress bars or warnings about peft.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import pytest

from llm_platform.config import CONFIG_ENV, DEMO_CONFIG, HOME_ENV, load_config
from llm_platform.library_warnings import ignore_third_party_deprecations
from llm_platform.serving.server import quiet_service_libraries

MLFLOW_PROGRESS_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
from llm_platform.tiny_model_notice import tiny_model_notice
from llm_platform_tests.processes import free_port, stop_process_group

REPO_ROOT = Path(__file__).resolve().parents[2]


def _tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=64,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
        )
    )


def test_peft_reading_the_old_checkpointing_property_warns_nothing():
    model = _tiny_llama()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ignore_third_party_deprecations()
        getattr(model, "is_gradient_checkpointing", True)  # what peft does when it wraps a model
    assert [w for w in caught if issubclass(w.category, FutureWarning)] == []


def test_other_future_warnings_still_show():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ignore_third_party_deprecations()
        warnings.warn("`something_else` is deprecated", FutureWarning, stacklevel=1)
    assert len(caught) == 1


def test_the_service_turns_mlflow_download_progress_bars_off(monkeypatch):
    monkeypatch.delenv(MLFLOW_PROGRESS_ENV, raising=False)
    quiet_service_libraries()
    assert os.environ[MLFLOW_PROGRESS_ENV] == "false"


def test_a_progress_bar_setting_of_the_operator_is_kept(monkeypatch):
    monkeypatch.setenv(MLFLOW_PROGRESS_ENV, "true")
    quiet_service_libraries()
    assert os.environ[MLFLOW_PROGRESS_ENV] == "true"


def test_the_tiny_model_notice_says_how_to_use_a_real_model():
    notice = tiny_model_notice(load_config(DEMO_CONFIG))
    assert notice is not None and "toy" in notice and "name_or_path: Qwen/Qwen2.5-0.5B-Instruct, revision:" in notice
    assert (
        "hf download Qwen/Qwen2.5-0.5B-Instruct --revision" in notice
        and "HF_HOME=" in notice
        and "allow_download: false" in notice
    )


def test_a_real_base_model_gets_no_notice(tmp_path):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "c.yaml").write_text(
        "sources:\n  - {name: docs, location: corpus}\nbase_model: "
        "{name_or_path: Qwen/Qwen2.5-0.5B-Instruct, revision: main}\n",
        encoding="utf-8",
    )
    assert tiny_model_notice(load_config(tmp_path / "c.yaml")) is None


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def test_serve_with_the_tiny_model_says_so_in_its_first_line(tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), HOME_ENV: str(tmp_path / "home")}
    env.pop(CONFIG_ENV, None)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "llm_platform.cli", "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 120
            while not _answers(f"http://127.0.0.1:{port}/healthz"):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(log.read_text(errors="replace")[-3000:])
                time.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        finally:
            stop_process_group(process)
    assert log.read_text().splitlines()[0].startswith("llm_platform: the base model is the tiny demo LM")


def _loading_bar_enabled(*, quieted: bool) -> bool:
    import subprocess
    import sys

    code = (
        "from llm_platform.library_warnings import quiet_progress_bars; quiet_progress_bars(); " if quieted else ""
    ) + "from transformers.utils import logging; print(logging.is_progress_bar_enabled())"
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"}
    return (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout.strip()
        == "True"
    )


def test_quieted_processes_draw_no_model_loading_bars():
    # transformers draws "Loading weights" on every load unless the huggingface_hub switch is set first.
    assert _loading_bar_enabled(quieted=False)
    assert not _loading_bar_enabled(quieted=True)
