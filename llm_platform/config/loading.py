"""Finding, reading and validating the config file once; errors name the file and the field."""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from llm_platform.config.platform import PlatformConfig

CONFIG_ENV = "LLM_PLATFORM_CONFIG"
HOME_ENV = "LLM_PLATFORM_HOME"
DEMO_CONFIG = Path(__file__).parents[1] / "demo" / "config.yaml"
DEFAULT_HOME = ".llm_platform"


class ConfigError(ValueError):
    """The configuration file is missing or malformed; the message names the file and field."""


def _resolve_location(location: str, base: Path) -> str:
    if "://" in location or Path(location).is_absolute():
        return location
    return str((base / location).resolve())


def _format_errors(path: Path, error: ValidationError) -> str:
    lines = [f"{path}: invalid configuration"]
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"]) or "(top level)"
        lines.append(f"  - {field}: {item['msg']}")
    return "\n".join(lines)


def _missing_source_folders(config: PlatformConfig, path: Path) -> str | None:
    """Each local source folder that does not exist, named by field (URLs are
    not checked: listing a bucket costs a request).
    """
    lines = [
        f"  - sources[{i}].location: {source.location} does not exist (source "
        f"{source.name!r}; a relative location is read from "
        f"{path.parent}): create the folder or point the source at your documents"
        for i, source in enumerate(config.sources)
        if "://" not in source.location and not Path(source.location).is_dir()
    ]
    return "\n".join([f"{path}: invalid configuration", *lines]) if lines else None


def load_config(path: str | os.PathLike[str] | None = None, *, check_folders: bool = True) -> PlatformConfig:
    """Read and validate the config YAML; errors name the file and the field.

    `check_folders=False` skips checking that local source folders exist, for a config
    read away from the machine that holds its data (a cluster's, checked on a workstation).
    """
    config_path = Path(path or os.environ.get(CONFIG_ENV) or DEMO_CONFIG).resolve()
    if not config_path.is_file():
        raise ConfigError(f"{config_path}: config file not found (set {CONFIG_ENV} to a YAML file)")
    data = config_path.read_bytes()
    try:
        raw = yaml.safe_load(data.decode("utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{config_path}: not UTF-8 text: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{config_path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{config_path}: the top level must be a mapping with a 'sources' list")
    for source in raw.get("sources") or []:
        if isinstance(source, dict) and isinstance(source.get("location"), str):
            source["location"] = _resolve_location(source["location"], config_path.parent)
    sft = raw.get("sft")
    if isinstance(sft, dict):
        for key in ("curated_location", "feedback_location", "approved_corrections"):
            if isinstance(sft.get(key), str):
                sft[key] = _resolve_location(sft[key], config_path.parent)
    prompts = raw.get("prompts")
    if isinstance(prompts, dict) and isinstance(prompts.get("template_file"), str):
        prompts["template_file"] = _resolve_location(prompts["template_file"], config_path.parent)
    raw["config_path"] = str(config_path)
    raw["config_sha256"] = hashlib.sha256(data).hexdigest()
    try:
        config = PlatformConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(config_path, exc)) from None
    missing = _missing_source_folders(config, config_path) if check_folders else None
    if missing:
        raise ConfigError(missing)
    return config


@lru_cache(maxsize=1)
def default_config() -> PlatformConfig:
    """The config named by the environment, loaded once per process (for Definitions)."""
    return config_at(None)


_loaded: dict[Path, PlatformConfig] = {}


def config_at(path: str | os.PathLike[str] | None) -> PlatformConfig:
    """The config at `path` (None: the environment's), parsed once per content.

    The Definitions and every step of a process share one object; a file whose
    bytes changed since is parsed again, and `config_sha256` tells the two apart.
    """
    config_path = Path(path or os.environ.get(CONFIG_ENV) or DEMO_CONFIG).resolve()
    cached = _loaded.get(config_path)
    if (
        cached is not None
        and config_path.is_file()
        and hashlib.sha256(config_path.read_bytes()).hexdigest() == cached.config_sha256
    ):
        return cached
    # Not the folder check: a running code location or step reports a missing folder per source (raw_documents
    # names it), where one absent landing folder must not stop every other job. People's entry points check.
    _loaded[config_path] = config = load_config(config_path, check_folders=False)
    return config


def platform_home() -> str:
    """The storage root: `LLM_PLATFORM_HOME`, else `.llm_platform` in the working directory."""
    home = os.environ.get(HOME_ENV) or DEFAULT_HOME
    return home if "://" in home else str(Path(home).resolve())
