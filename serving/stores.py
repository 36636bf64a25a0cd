"""Builds the configured :class:`graph.GraphStore`; the only place that picks a backend."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from typing import TYPE_CHECKING

from graph import GraphStore
from serving.settings import ConfigurationError, Settings

if TYPE_CHECKING:
    from graph.neo4j_import import Neo4jImport


def build_store(settings: Settings, *, read_only: bool = False,
                bulk_import: Neo4jImport | None = None) -> GraphStore:
    """Open the store the settings name: Neo4j when ``NEO4J_URI`` is set, else LadybugDB.

    Args:
        settings (Settings): the settings.
        read_only (bool, optional): open the embedded store read-only. (default: ``False``)
        bulk_import (Neo4jImport, optional): Neo4j's offline import (``riskgraph load
            --neo4j-import``), the store's bulk path; only for Neo4j. (default: ``None``)

    Raises:
        ConfigurationError: Neo4j outside loopback with the development password, or
            ``bulk_import`` without Neo4j.
    """
    if bulk_import is not None and not settings.NEO4J_URI:
        raise ConfigurationError("an offline Neo4j import needs RISKGRAPH_NEO4J_URI")
    if settings.NEO4J_URI:
        from graph.neo4j_store import Neo4jStore

        check_neo4j_password(settings)
        return Neo4jStore.from_uri(
            settings.NEO4J_URI,
            auth=(settings.NEO4J_USER, settings.NEO4J_PASSWORD.get_secret_value()),
            database=settings.NEO4J_DATABASE,
            max_connection_pool_size=settings.NEO4J_MAX_POOL_SIZE,
            connection_timeout=settings.NEO4J_CONNECTION_TIMEOUT_S,
            query_timeout=settings.NEO4J_QUERY_TIMEOUT_S,
            max_transaction_retry_time=settings.NEO4J_MAX_RETRY_TIME_S,
            batch_size=settings.WRITE_BATCH_SIZE,
            bulk_import=bulk_import,
        )
    from graph.ladybug_store import LadybugStore

    settings.ladybug_path.parent.mkdir(parents=True, exist_ok=True)
    return LadybugStore(settings.ladybug_path, read_only=read_only,
                        batch_size=settings.WRITE_BATCH_SIZE,
                        buffer_pool_bytes=settings.LADYBUG_BUFFER_POOL_MB * 2**20,
                        checkpoint_wal_bytes=settings.LADYBUG_CHECKPOINT_MB * 2**20)


def buffer_pool_advice(pool_bytes: int) -> str:
    """What to do when the embedded store's buffer pool is full
    (:class:`graph.BufferPoolFullError`): the setting to raise, with the value it has now.

    Args:
        pool_bytes (int): the pool the store was opened with; ``0``: LadybugDB's default.
    """
    if pool_bytes == 0:
        return ("RISKGRAPH_LADYBUG_BUFFER_POOL_MB is 0 (LadybugDB's default, 80 % of RAM): "
                "the store needs a machine with more memory")
    now = pool_bytes // 2**20
    return f"raise RISKGRAPH_LADYBUG_BUFFER_POOL_MB (now {now}), e.g. to {2 * now}"


def check_neo4j_password(settings: Settings) -> None:
    """Refuse the development default password for a Neo4j server that is not on loopback.

    Raises:
        ConfigurationError: ``NEO4J_PASSWORD`` is the default and ``NEO4J_URI`` names another
            host.
    """
    default = Settings.model_fields["NEO4J_PASSWORD"].default
    if settings.NEO4J_URI is None or settings.NEO4J_PASSWORD != default:
        return
    host = urlsplit(settings.NEO4J_URI).hostname or ""
    if not is_loopback(host):
        raise ConfigurationError(
            f"RISKGRAPH_NEO4J_PASSWORD is the development default, refused for {host!r} "
            "(not loopback): set the server's real password")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
