"""The index domain: embeddings, the LanceDB table, retrieval evaluation and drift."""

# Here rather than in table.py so the CLI can offer them without importing pyarrow.
SEARCH_MODES = ("vector", "fts", "hybrid")
