from __future__ import annotations

import math

import numpy as np
import pytest

from kernels import haversine_km, location_anomaly


def ref_haversine(lat1, lon1, lat2, lon2):
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(a)))


def test_haversine_known_distances(backend) -> None:
    lat1 = backend.asarray(np.array([39.9042, 0.0, 10.0, 0.0, np.nan]))
    lon1 = backend.asarray(np.array([116.4074, 0.0, 20.0, 0.0, 0.0]))
    lat2 = backend.asarray(np.array([31.2304, 0.0, 10.0, 0.0, 0.0]))
    lon2 = backend.asarray(np.array([121.4737, 180.0, 20.0, 90.0, 0.0]))
    got = backend.asnumpy(haversine_km(lat1, lon1, lat2, lon2))
    assert got[0] == pytest.approx(1067.3, abs=1.0)  # Beijing - Shanghai
    assert got[1] == pytest.approx(math.pi * 6371.0088, rel=1e-12)  # antipodes
    assert got[2] == 0.0
    assert got[3] == pytest.approx(math.pi / 2 * 6371.0088, rel=1e-12)
    assert np.isnan(got[4])


def test_haversine_random_against_reference(backend, rng) -> None:
    n = 1000
    pts = [rng.uniform(-90, 90, n), rng.uniform(-180, 180, n),
           rng.uniform(-90, 90, n), rng.uniform(-180, 180, n)]
    got = backend.asnumpy(haversine_km(*(backend.asarray(p) for p in pts)))
    want = [ref_haversine(*(float(p[i]) for p in pts)) for i in range(n)]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def ref_anomaly(hu, ht, hla, hlo, qu, qt, qla, qlo, home_lat, home_lon, k):
    """Loops: last k logins of the user strictly before the query (stream order), medians."""
    stream = sorted(range(len(ht)), key=lambda i: (ht[i], i))
    out = []
    for i in range(len(qu)):
        past = [j for j in stream if hu[j] == qu[i] and ht[j] < qt[i]][-k:]
        if past:
            mla = float(np.median([hla[j] for j in past]))
            mlo = float(np.median([hlo[j] for j in past]))
            usual = ref_haversine(qla[i], qlo[i], mla, mlo)
        else:
            usual = float("nan")
        home = ref_haversine(qla[i], qlo[i], home_lat[qu[i]], home_lon[qu[i]])
        out.append((usual, home, len(past)))
    return np.array(out)


@pytest.mark.parametrize("k", [1, 4, 15])
def test_anomaly_matches_reference(backend, rng, k) -> None:
    h, q, users = 500, 200, 12
    hu = rng.integers(0, users, h)
    ht = rng.integers(0, 60, h) * 60  # ties are common
    hla, hlo = rng.uniform(20, 45, h), rng.uniform(100, 125, h)
    qu = rng.integers(0, users + 2, q)  # two users with no history at all
    qt = rng.integers(0, 61, q) * 60  # query times coincide with history times
    qla, qlo = rng.uniform(20, 45, q), rng.uniform(100, 125, q)
    home_lat, home_lon = rng.uniform(20, 45, users + 2), rng.uniform(100, 125, users + 2)
    b = backend.asarray
    got = location_anomaly(b(hu), b(ht), b(hla), b(hlo), b(qu), b(qt), b(qla), b(qlo),
                           home_lat=b(home_lat), home_lon=b(home_lon), k=k)
    want = ref_anomaly(hu, ht, hla, hlo, qu, qt, qla, qlo, home_lat, home_lon, k)
    np.testing.assert_allclose(backend.asnumpy(got.dist_usual_km), want[:, 0], rtol=1e-9)
    np.testing.assert_allclose(backend.asnumpy(got.dist_home_km), want[:, 1], rtol=1e-9)
    np.testing.assert_array_equal(backend.asnumpy(got.n_history), want[:, 2])


def test_strictly_before_and_no_home(backend) -> None:
    b = backend.asarray
    got = location_anomaly(
        b(np.array([0, 0])), b(np.array([100, 200])), b(np.array([30.0, 40.0])),
        b(np.array([110.0, 110.0])), b(np.array([0, 0, 0])), b(np.array([100, 200, 201])),
        b(np.array([30.0, 30.0, 30.0])), b(np.array([110.0, 110.0, 110.0])),
    )
    n = backend.asnumpy(got.n_history).tolist()
    assert n == [0, 1, 2]  # a login in the same second is not "before"
    usual = backend.asnumpy(got.dist_usual_km)
    assert np.isnan(usual[0]) and usual[1] == 0.0
    assert np.isnan(backend.asnumpy(got.dist_home_km)).all()
    assert backend.asnumpy(got.usual_lat)[2] == 35.0  # median of two = their mean


def test_nan_history_is_ignored(backend) -> None:
    b = backend.asarray
    got = location_anomaly(
        b(np.array([0, 0])), b(np.array([1, 2])), b(np.array([np.nan, 30.0])),
        b(np.array([110.0, 110.0])), b(np.array([0])), b(np.array([3])),
        b(np.array([30.0])), b(np.array([110.0])),
    )
    assert backend.asnumpy(got.n_history).tolist() == [1]


def test_bad_k_and_home() -> None:
    z = np.zeros(1)
    i = np.zeros(1, np.int64)
    with pytest.raises(ValueError, match="k must be at most 64"):
        location_anomaly(i, i, z, z, i, i, z, z, k=65)
    with pytest.raises(ValueError, match="home_lat and home_lon"):
        location_anomaly(i, i, z, z, i, i, z, z, home_lat=z)
    with pytest.raises(ValueError, match="query_user must be < 1"):
        location_anomaly(i, i, z, z, i + 1, i, z, z, home_lat=z, home_lon=z)
