"""The document datasets, each declared once: its name on disk, schema and
partitioning (one partition per source or source shard).
"""

from llm_platform.datasets import Dataset
from llm_platform.documents.chunk_table import CHUNK_SCHEMA
from llm_platform.documents.corpus import CLEANED_SCHEMA, SET_ASIDE_SCHEMA
from llm_platform.documents.sources import QUARANTINE_SCHEMA, RAW_SCHEMA

RAW_DOCUMENTS_DATA = Dataset("raw_documents", RAW_SCHEMA, partitioned=True)
CLEANED_CORPUS_DATA = Dataset("cleaned_corpus", CLEANED_SCHEMA, partitioned=True)
CHUNKS_DATA = Dataset("chunks", CHUNK_SCHEMA, partitioned=True)
# The cleaned rows cleaned_corpus set aside, kept so that the next run reuses them instead of cleaning them again.
CLEANED_SET_ASIDE_DATA = Dataset("cleaned_set_aside", SET_ASIDE_SCHEMA, partitioned=True)
RAW_QUARANTINE_DATA = Dataset("quarantine_raw_documents", QUARANTINE_SCHEMA, partitioned=True)
CLEANED_QUARANTINE_DATA = Dataset("quarantine_cleaned_corpus", QUARANTINE_SCHEMA, partitioned=True)
