"""The serving datasets, each declared once: its name on disk and schema."""

from llm_platform.datasets import Dataset
from llm_platform.serving.query_drift import LOG_SCHEMA

SERVING_LOG_DATA = Dataset("serving_log", LOG_SCHEMA)
