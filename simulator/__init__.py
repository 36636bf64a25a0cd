"""A lending ecosystem simulator with planted fraud patterns and credit default.

``simulate_world(WorldConfig(users=..., seed=...))`` builds a world; ``write_world`` writes it as
Parquet tables (:data:`TABLES`) that :func:`graph.loader.load_world` loads into a store.
docs/SIMULATOR.md is the data card.
"""

from simulator.config import (
    PATTERNS,
    PRODUCTS,
    AccountTakeoverConfig,
    BehaviourConfig,
    CreditConfig,
    DeviceFarmConfig,
    FraudRingConfig,
    LabelConfig,
    MerchantCollusionConfig,
    PackagingConfig,
    PopulationConfig,
    SalesInflationConfig,
    SyntheticIdentityConfig,
    WorldConfig,
)
from simulator.datacard import (
    HIDING_PATTERNS,
    HIDING_STATISTICS,
    BaseRates,
    base_rates,
    hiding_statistics,
    render_difficulties,
    render_hiding,
    render_markdown,
    render_parameters,
    render_schemas,
    write_into,
)
from graph.world_files import (
    METADATA_FILE,
    RAW_TABLES,
    TABLES,
    TRUTH_TABLES,
    read_metadata,
    read_table,
)
from simulator.difficulty import DIFFICULTIES, difficulty_of, hiding_knobs, with_difficulty
from simulator.world import World, simulate_world, write_world

__all__ = [
    "DIFFICULTIES",
    "HIDING_PATTERNS",
    "HIDING_STATISTICS",
    "METADATA_FILE",
    "PATTERNS",
    "PRODUCTS",
    "RAW_TABLES",
    "TABLES",
    "TRUTH_TABLES",
    "AccountTakeoverConfig",
    "BaseRates",
    "BehaviourConfig",
    "CreditConfig",
    "DeviceFarmConfig",
    "FraudRingConfig",
    "LabelConfig",
    "MerchantCollusionConfig",
    "PackagingConfig",
    "PopulationConfig",
    "SalesInflationConfig",
    "SyntheticIdentityConfig",
    "World",
    "WorldConfig",
    "base_rates",
    "difficulty_of",
    "hiding_knobs",
    "hiding_statistics",
    "read_metadata",
    "read_table",
    "render_difficulties",
    "render_hiding",
    "render_markdown",
    "render_parameters",
    "render_schemas",
    "simulate_world",
    "with_difficulty",
    "write_into",
    "write_world",
]
