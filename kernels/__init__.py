"""Feature kernels: pure array functions that turn behaviour and graph structure into risk
signals, on NumPy (CPU) or CuPy (GPU) with the same results.

Each kernel comes in two modes with one truth: a batch function over whole arrays (every entity
or event, for training and rescoring) and an incremental state whose update touches only the
entities an event touches (the online path). Inputs are plain arrays: CSR ``indptr``/``indices``,
event columns (entity positions, int64 epoch seconds, float64 coordinates and amounts,
label-visible-from times). The functions take NumPy or CuPy arrays and return the same kind;
copies between host and device happen only where the caller asks, through :class:`Backend`.
"""

from kernels._backend import (
    CPU,
    HAS_CUPY,
    Backend,
    cuda_available,
    get_array_module,
    select_backend,
)
from kernels.amount import AmountAnomaly, AmountState, amount_anomaly
from kernels.errors import (
    BackendUnavailableError,
    EventOrderError,
    KernelError,
    KeyOverflowError,
    MixedBackendError,
)
from kernels.location import LocationAnomaly, LocationState, haversine_km, location_anomaly
from kernels.merchant import MerchantSignals, MerchantState, merchant_signals
from kernels.segment import (
    SegmentAccumulator,
    SegmentStats,
    segment_count,
    segment_count_distinct,
    segment_ids,
    segment_max,
    segment_mean,
    segment_sum,
)
from kernels.shared_entities import (
    DEFAULT_HUB_DEGREE,
    SharedEntityFeatures,
    SharedEntityState,
    shared_entity_features,
    shared_entity_features_at,
)
from kernels.typing import DAY, DEFAULT_WINDOWS, HOUR, NEVER, WEEK
from kernels.velocity import (
    FirstSeenState,
    VelocityState,
    compute_velocity,
    mark_first_seen,
    velocity_as_of,
)

__all__ = [
    "CPU",
    "DAY",
    "DEFAULT_HUB_DEGREE",
    "DEFAULT_WINDOWS",
    "HAS_CUPY",
    "HOUR",
    "NEVER",
    "WEEK",
    "AmountAnomaly",
    "AmountState",
    "Backend",
    "BackendUnavailableError",
    "EventOrderError",
    "FirstSeenState",
    "KernelError",
    "KeyOverflowError",
    "LocationAnomaly",
    "LocationState",
    "MerchantSignals",
    "MerchantState",
    "MixedBackendError",
    "SegmentAccumulator",
    "SegmentStats",
    "SharedEntityFeatures",
    "SharedEntityState",
    "VelocityState",
    "amount_anomaly",
    "compute_velocity",
    "cuda_available",
    "get_array_module",
    "haversine_km",
    "location_anomaly",
    "mark_first_seen",
    "merchant_signals",
    "segment_count",
    "segment_count_distinct",
    "segment_ids",
    "segment_max",
    "segment_mean",
    "segment_sum",
    "select_backend",
    "shared_entity_features",
    "shared_entity_features_at",
    "velocity_as_of",
]
