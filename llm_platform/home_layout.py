"""What lives where under the storage home, and the name of the registry alias the service follows.

The home is a local folder or an fsspec URL (`s3://bucket/prefix`); every folder
below is relative to it, so a path is always `under(home, FOLDER)`.
"""

from __future__ import annotations

# The MLflow registry alias that names the production adapter: production_model moves it, the service follows it.
PRODUCTION_ALIAS = "production"

LANCEDB = "lancedb"
DATASETS = "datasets"
EMBEDDING_CACHE = "embedding_cache"
MLFLOW = "mlflow"
MODELS = "models"
FEEDBACK = "serving/feedback"
QUERY_LOG = "serving/query_log"
SFT_APPROVALS = "sft/approved_corrections.jsonl"


def under(home: str, relative: str) -> str:
    """`relative` (one of the names above) under `home`, joined by exactly one slash."""
    return f"{home.rstrip('/')}/{relative}"


def lancedb_uri(home: str) -> str:
    """The LanceDB database under `home` (a folder, or a URL when the home is one)."""
    return under(home, LANCEDB)
