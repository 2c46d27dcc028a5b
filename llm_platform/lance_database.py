"""Opening a LanceDB database, in a local folder or on an object store.

Below the index and the resources, which both open the database under the storage home.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import lancedb


def connect(uri: str) -> lancedb.DBConnection:
    """Open the LanceDB database at `uri` (a folder or object-store URL)."""
    import lancedb

    from llm_platform.storage_files import lance_storage_options

    return lancedb.connect(uri, storage_options=lance_storage_options(uri) or None)
