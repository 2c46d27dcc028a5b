"""The model datasets, each declared once: its name on disk and schema
(all unpartitioned; a record's schema is its row's).
"""

import pyarrow as pa

from llm_platform.datasets import Dataset
from llm_platform.model.sft_build import SFT_SCHEMA

SFT_QUARANTINE_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("line", pa.int64()),
        ("origin", pa.string()),
        ("rule", pa.string()),
        ("reason", pa.string()),
    ]
)

SFT_DATASET_DATA = Dataset("sft_dataset", SFT_SCHEMA)
SFT_EVAL_SPLIT_DATA = Dataset("sft_eval_split", SFT_SCHEMA)
SFT_QUARANTINE_DATA = Dataset("sft_quarantine", SFT_QUARANTINE_SCHEMA)
BASE_MODEL_DATA = Dataset("base_model")
PROMPT_TEMPLATE_DATA = Dataset("prompt_template")
LORA_ADAPTER_DATA = Dataset("lora_adapter")
LORA_ADAPTER_PAIRS_DATA = Dataset("lora_adapter_pairs")
MODEL_EVAL_DATA = Dataset("model_eval")
PRODUCTION_MODEL_DATA = Dataset("production_model")
