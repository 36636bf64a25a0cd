"""What investigators read: neighbourhoods and shared accounts, straight from the store, under
the investigators' own read budget (:meth:`serving.store_guard.StoreGuard.investigate`)."""

from __future__ import annotations

from collections.abc import Sequence

from graph import (
    GraphError,
    GraphStore,
    SharedAccount,
    StoreError,
    StoreUnavailableError,
    Subgraph,
)
from graph.typing import NodeType
from serving.errors import NotFoundError, UnavailableError
from serving.store_guard import StoreDown, StoreGuard


def user_neighbourhood(guard: StoreGuard, user_id: str, *, hops: int, fanout: int) -> Subgraph:
    """The user's neighbourhood within ``hops`` (1-3), ``fanout`` neighbours per node and hop.

    Raises:
        NotFoundError: no such user.
        UnavailableError: the store is down or slower than the investigators' budget.
    """
    def read(store: GraphStore) -> Subgraph | None:
        if store.get_node("User", user_id) is None:
            return None
        try:
            return store.neighbourhood("User", user_id, hops=hops, fanout=fanout)
        except (StoreUnavailableError, StoreError):
            raise
        except GraphError:
            return None

    try:
        sub = guard.investigate(read)
    except StoreDown as e:
        raise UnavailableError(f"graph store unavailable: {e}") from e
    if sub is None:
        raise NotFoundError(f"no user {user_id!r}")
    return sub


def shared_accounts(guard: StoreGuard, user_id: str, *, via: Sequence[NodeType],
                    limit: int) -> list[SharedAccount]:
    """Accounts sharing a device, phone, address or IP with the user.

    Raises:
        NotFoundError: no such user.
        UnavailableError: the store is down or slower than the investigators' budget.
    """
    def read(store: GraphStore) -> list[SharedAccount] | None:
        if store.get_node("User", user_id) is None:
            return None
        return store.shared_accounts(user_id, via=via, limit=limit)

    try:
        accounts = guard.investigate(read)
    except StoreDown as e:
        raise UnavailableError(f"graph store unavailable: {e}") from e
    if accounts is None:
        raise NotFoundError(f"no user {user_id!r}")
    return accounts
