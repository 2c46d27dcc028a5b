"""The platform's one configuration file, validated once at load.

`LLM_PLATFORM_CONFIG` names the YAML file (default: the bundled demo config) and
`LLM_PLATFORM_HOME` the folder or URL that holds every dataset, the LanceDB
database, model files and local MLflow. Paths inside the YAML are relative to the
YAML file's own folder, so a config and its corpus can move together.

One module per concern: `sources`, `documents`, `index`, `model`, `gates`, `automation`,
`serving`; `platform` holds the whole file's type and `loading` reads it. Every name
is importable from `llm_platform.config`.
"""

from __future__ import annotations

from llm_platform.config.automation import AlertSettings, FreshnessSettings
from llm_platform.config.documents import ChunkingConfig, CleaningConfig, DocumentsConfig
from llm_platform.config.gates import MODEL_METRICS, GateSettings
from llm_platform.config.index import DEFAULT_EMBEDDING_MODEL, DriftSettings, EmbeddingConfig, IndexConfig
from llm_platform.config.loading import (
    CONFIG_ENV,
    DEFAULT_HOME,
    DEMO_CONFIG,
    HOME_ENV,
    ConfigError,
    config_at,
    default_config,
    load_config,
    platform_home,
)
from llm_platform.config.model import (
    DEFAULT_PROMPT_TEMPLATE,
    SFT_RULE_NAMES,
    TINY_MIN_VOCAB,
    BaseModelSettings,
    EvaluationSettings,
    MlflowSettings,
    PromptSettings,
    SftConfig,
    TinyModelSettings,
    TrainingSettings,
)
from llm_platform.config.platform import PlatformConfig
from llm_platform.config.serving import ServingSettings
from llm_platform.config.sources import SourceConfig
from llm_platform.config.strict import Strict

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_EMBEDDING_MODEL",
    "DEFAULT_HOME",
    "DEFAULT_PROMPT_TEMPLATE",
    "DEMO_CONFIG",
    "HOME_ENV",
    "MODEL_METRICS",
    "SFT_RULE_NAMES",
    "TINY_MIN_VOCAB",
    "AlertSettings",
    "BaseModelSettings",
    "ChunkingConfig",
    "CleaningConfig",
    "ConfigError",
    "DocumentsConfig",
    "DriftSettings",
    "EmbeddingConfig",
    "EvaluationSettings",
    "FreshnessSettings",
    "GateSettings",
    "IndexConfig",
    "MlflowSettings",
    "PlatformConfig",
    "PromptSettings",
    "ServingSettings",
    "SftConfig",
    "SourceConfig",
    "Strict",
    "TinyModelSettings",
    "TrainingSettings",
    "config_at",
    "default_config",
    "load_config",
    "platform_home",
]
