"""Freshness expectations (`freshness`) and where run failures are announced (`alerts`)."""

from __future__ import annotations

from pydantic import Field

from llm_platform.config.strict import Strict


class FreshnessSettings(Strict):
    index_hours: float = Field(24.0, gt=0)
    eval_hours: float = Field(24.0 * 7, gt=0)


class AlertSettings(Strict):
    webhook_url: str | None = Field(
        None, description="Slack-compatible incoming webhook for run failures; prefer LLM_PLATFORM_WEBHOOK_URL."
    )
    ui_url: str | None = Field(None, description="Base URL of the Dagster UI, for links in messages.")
