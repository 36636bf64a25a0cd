"""Fixtures of the graph tests: the small simulated world the loader tests load."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from graph.loader import clear_checkpoints
from simulator import WorldConfig, read_table, simulate_world, write_world


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 300-user world (seed 7), written once per test module."""
    out = tmp_path_factory.mktemp("world")
    write_world(simulate_world(WorldConfig(users=300, seed=7)), out)
    return out


@pytest.fixture
def fresh_dir(world_dir: Path) -> Path:
    """:func:`world_dir` with no load checkpoint left by an earlier test."""
    clear_checkpoints(world_dir)
    return world_dir


@pytest.fixture(scope="module")
def ragged_world(world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The world plus rows that name entities no entity table holds (a contact and an owner
    never signed up, labels on an unknown application), that the upserts create bare; a
    contact listed again, later, in a later chunk (the upserts keep the earliest ``since``);
    an application marked fraud, then cleared (the later label wins)."""
    out = tmp_path_factory.mktemp("ragged")
    for file in world_dir.glob("*"):
        if not file.name.startswith("."):
            shutil.copy(file, out / file.name)
    start = WorldConfig().start_ts

    def append(table: str, rows: list[dict[str, Any]]) -> None:
        old = read_table(out, table)
        pq.write_table(pa.concat_tables([old, pa.Table.from_pylist(rows, schema=old.schema)]),
                       out / f"{table}.parquet")

    first = read_table(world_dir, "contacts").slice(0, 1).to_pylist()[0]
    append("contacts", [{"user_id": "U-ghost", "contact_user_id": "U-ghost-2", "since": start},
                        {**first, "since": first["since"] + 86_400}])
    append("ownership", [{"user_id": "U-ghost", "merchant_id": "M-ghost", "since": start}])
    append("label_events", [{"entity_type": "Application", "entity_id": "A-ghost",
                             "kind": kind, "visible_at": start + day * 86_400,
                             "source": f"investigator:{kind}"}
                            for day, kind in ((1, "fraud"), (2, "cleared"))])
    return out
