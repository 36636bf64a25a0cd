"""Feature kernels: pure array functions that turn behaviour and graph structure into risk
signals, on NumPy (CPU) or CuPy (GPU) with the same results.

Each kernel is an *as-of* function: given the events (or edges) and the queries ``(entity,
time)``, it answers every query from what lies before its time, whether the arrays hold one
user's few hundred rows or the whole world's. That is the one definition of each signal. The
two ways of using it are not two implementations:

* batch (training, evaluation, rescoring): the kernels run over every application or user of a
  graph state, on CuPy when a usable GPU is there;
* online (one accepted write at a time): the live graph state, :class:`gnn.LendingGraph`, is
  kept current by ``LendingGraph.apply``, and :class:`gnn.RiskFeatures` calls these same
  kernels on the few rows one application touches (on NumPy).

tests/gnn/test_live_lending_graph.py checks that a world written one write at a time gives the
arrays, features and scores of the one-pass build; tests/kernels/ checks each kernel against a
reference written the obvious way, on NumPy and, on a CUDA machine, on CuPy.

Inputs are plain arrays: CSR ``indptr``/``indices``, event columns (entity positions, int64
epoch seconds, float64 coordinates and amounts, label-visible-from times). The functions take
NumPy or CuPy arrays and return the same kind; copies between host and device happen only where
the caller asks, through :class:`Backend`.
"""

from kernels._backend import (
    CPU,
    HAS_CUPY,
    Backend,
    cuda_available,
    get_array_module,
    select_backend,
)
from kernels.amount import AmountAnomaly, amount_anomaly
from kernels.errors import (
    BackendUnavailableError,
    KernelError,
    KeyOverflowError,
    MixedBackendError,
)
from kernels.location import EARTH_RADIUS_KM, LocationAnomaly, haversine_km, location_anomaly
from kernels.merchant import MerchantSignals, merchant_signals
from kernels.segment import (
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
    shared_entity_features,
    shared_entity_features_at,
)
from kernels.typing import DAY, DEFAULT_WINDOWS, HOUR, NEVER, WEEK
from kernels.velocity import compute_velocity, mark_first_seen, velocity_as_of

__all__ = [
    "CPU",
    "DAY",
    "DEFAULT_HUB_DEGREE",
    "DEFAULT_WINDOWS",
    "EARTH_RADIUS_KM",
    "HAS_CUPY",
    "HOUR",
    "NEVER",
    "WEEK",
    "AmountAnomaly",
    "Backend",
    "BackendUnavailableError",
    "KernelError",
    "KeyOverflowError",
    "LocationAnomaly",
    "MerchantSignals",
    "MixedBackendError",
    "SharedEntityFeatures",
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
