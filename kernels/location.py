"""Location anomaly: how far an event is from the user's usual place and from home.

The *usual location* of a user at time ``t`` is the coordinate-wise median of the user's last
``k`` logins strictly before ``t`` (ties in time: a login in the same second is not "before").
A median of recent logins shrugs off the odd trip but moves when the user moves; "login from
an unusual city, then a large application" is the account-takeover pattern it serves.
Distances are great-circle (haversine) kilometres on a sphere of radius 6371.0088 km.
Undefined is NaN: no earlier login, no home address, or a NaN coordinate in the event.

GPU: ``_haversine_kernel`` (ElementwiseKernel) fuses the formula's ~15 elementwise operations,
each of which would otherwise read and write a full temporary array, into one pass; the
medians come from ``_slice_median_kernel`` (see :mod:`kernels._window`). Both are built with
the default flags; CPU and GPU may differ in the last bits of sin/cos/asin (rtol 1e-12).
"""

from __future__ import annotations

import math
from typing import Final, NamedTuple

import numpy as np

from kernels._backend import get_array_module, lazy_elementwise_kernel
from kernels._validate import as_1d, check_index, check_positive
from kernels._window import KMAX, GroupedTimes, slice_median
from kernels.typing import Array

EARTH_RADIUS_KM: Final = 6371.0088
"""Mean Earth radius (IUGG), the one declaration: the GPU source and the simulator use it."""
_RAD = math.pi / 180.0

_HAVERSINE_SRC = r"""
__device__ inline double haversine_km(double lat1, double lon1, double lat2, double lon2) {
    const double rad = 0.017453292519943295;
    double p1 = lat1 * rad;
    double p2 = lat2 * rad;
    double s1 = sin(0.5 * (p2 - p1));
    double s2 = sin((0.5 * (lon2 - lon1)) * rad);
    double a = s1 * s1 + cos(p1) * cos(p2) * (s2 * s2);
    double c = (a > 1.0) ? 1.0 : sqrt(a);  // NaN stays NaN (fmin would drop it)
    return (2.0 * EARTH_RADIUS_KM) * asin(c);
}
""".replace("EARTH_RADIUS_KM", repr(EARTH_RADIUS_KM))

_haversine_kernel = lazy_elementwise_kernel(
    "float64 lat1, float64 lon1, float64 lat2, float64 lon2",
    "float64 km",
    "km = haversine_km(lat1, lon1, lat2, lon2)",
    "riskgraph_haversine",
    preamble=_HAVERSINE_SRC,
)


def haversine_km(lat1: Array, lon1: Array, lat2: Array, lon2: Array) -> Array:
    """Great-circle distance in km between points given in degrees (broadcasting).

    Args:
        lat1 (Array): latitude of the first points, degrees.
        lon1 (Array): longitude of the first points, degrees.
        lat2 (Array): latitude of the second points, degrees.
        lon2 (Array): longitude of the second points, degrees.

    Returns:
        Array: float64 kilometres; NaN where any coordinate is NaN.
    """
    xp = get_array_module(lat1, lon1, lat2, lon2)
    a1, o1, a2, o2 = (xp.asarray(v, dtype=np.float64) for v in (lat1, lon1, lat2, lon2))
    if xp is not np:
        return _haversine_kernel(a1, o1, a2, o2)
    # NOTE: an out-of-range or infinite coordinate gives NaN, as on the GPU, not a warning.
    with np.errstate(invalid="ignore"):
        p1 = a1 * _RAD
        p2 = a2 * _RAD
        s1 = np.sin(0.5 * (p2 - p1))
        s2 = np.sin((0.5 * (o2 - o1)) * _RAD)
        a = s1 * s1 + np.cos(p1) * np.cos(p2) * (s2 * s2)
        c = np.where(a > 1.0, 1.0, np.sqrt(a))
        return (2.0 * EARTH_RADIUS_KM) * np.arcsin(c)


class LocationAnomaly(NamedTuple):
    """Per query event: distances in km and how many logins the usual place came from."""

    dist_usual_km: Array
    dist_home_km: Array
    n_history: Array
    usual_lat: Array
    usual_lon: Array


def location_anomaly(
    history_user: Array,
    history_ts: Array,
    history_lat: Array,
    history_lon: Array,
    query_user: Array,
    query_ts: Array,
    query_lat: Array,
    query_lon: Array,
    *,
    home_lat: Array | None = None,
    home_lon: Array | None = None,
    k: int = 15,
) -> LocationAnomaly:
    """Distance of each query event to the user's usual location and to the home address.

    Args:
        history_user (Array): int64 user of each past login, ``[h]``.
        history_ts (Array): int64 epoch seconds, ``[h]``, any order.
        history_lat (Array): degrees, ``[h]``; logins with a NaN coordinate are ignored.
        history_lon (Array): degrees, ``[h]``.
        query_user (Array): int64 user of each event to score, ``[q]``.
        query_ts (Array): int64 epoch seconds, ``[q]``.
        query_lat (Array): degrees, ``[q]``.
        query_lon (Array): degrees, ``[q]``.
        home_lat (Array, optional): home latitude per user, ``[n_users]``, NaN if unknown.
            (default: no home distance, all NaN)
        home_lon (Array, optional): home longitude per user, ``[n_users]``.
        k (int, optional): how many latest logins make the usual location, 1..64.
            (default: ``15``)

    Returns:
        LocationAnomaly: float64 ``[q]`` arrays and int64 ``n_history``.

    Raises:
        ValueError: on mismatched lengths, negative users, or ``k`` outside 1..64.
    """
    check_positive("k", k)
    if k > KMAX:
        raise ValueError(f"k must be at most {KMAX}, got {k}")
    xp = get_array_module(
        history_user, history_ts, history_lat, history_lon,
        query_user, query_ts, query_lat, query_lon, home_lat, home_lon,
    )
    hu = as_1d(xp, "history_user", history_user, np.int64)
    h = int(hu.shape[0])
    ht = as_1d(xp, "history_ts", history_ts, np.int64, n=h)
    hla = as_1d(xp, "history_lat", history_lat, np.float64, n=h)
    hlo = as_1d(xp, "history_lon", history_lon, np.float64, n=h)
    qu = as_1d(xp, "query_user", query_user, np.int64)
    q = int(qu.shape[0])
    qt = as_1d(xp, "query_ts", query_ts, np.int64, n=q)
    qla = as_1d(xp, "query_lat", query_lat, np.float64, n=q)
    qlo = as_1d(xp, "query_lon", query_lon, np.float64, n=q)
    check_index(xp, "history_user", hu, None)
    check_index(xp, "query_user", qu, None)
    if (home_lat is None) != (home_lon is None):
        raise ValueError("home_lat and home_lon must be given together")

    keep = xp.isfinite(hla) & xp.isfinite(hlo)
    hu, ht, hla, hlo = hu[keep], ht[keep], hla[keep], hlo[keep]
    n_groups = max(int(hu.max()) + 1 if hu.shape[0] else 1, int(qu.max()) + 1 if q else 1)
    gt = GroupedTimes.build(xp, hu, ht, n_groups)
    end = gt.search(xp, qu, qt, side="left")
    start = xp.maximum(gt.group_start(xp, qu), end - k)
    med_lat, _ = slice_median(xp, hla[gt.order], start, end, want_mad=False)
    med_lon, _ = slice_median(xp, hlo[gt.order], start, end, want_mad=False)
    dist_usual = haversine_km(qla, qlo, med_lat, med_lon)
    if home_lat is not None:
        hla_u = as_1d(xp, "home_lat", home_lat, np.float64)
        hlo_u = as_1d(xp, "home_lon", home_lon, np.float64, n=int(hla_u.shape[0]))
        check_index(xp, "query_user", qu, int(hla_u.shape[0]))
        dist_home = haversine_km(qla, qlo, hla_u[qu], hlo_u[qu])
    else:
        dist_home = xp.full(q, np.nan, dtype=np.float64)
    return LocationAnomaly(dist_usual, dist_home, end - start, med_lat, med_lon)
