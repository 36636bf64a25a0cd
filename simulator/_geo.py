"""Cities with coordinates and the distance between points."""

from __future__ import annotations

from typing import Final

import numpy as np

from kernels import haversine_km

# name, latitude, longitude, urban population (millions, as a sampling weight), admin code
_CITIES: Final[tuple[tuple[str, float, float, float, str], ...]] = (
    ("上海市", 31.2304, 121.4737, 24.9, "310101"),
    ("北京市", 39.9042, 116.4074, 21.9, "110101"),
    ("深圳市", 22.5431, 114.0579, 17.6, "440301"),
    ("重庆市", 29.5630, 106.5516, 16.0, "500101"),
    ("广州市", 23.1291, 113.2644, 18.7, "440101"),
    ("成都市", 30.5728, 104.0668, 16.3, "510101"),
    ("天津市", 39.3434, 117.3616, 13.9, "120101"),
    ("武汉市", 30.5928, 114.3055, 12.3, "420101"),
    ("西安市", 34.3416, 108.9398, 12.9, "610101"),
    ("杭州市", 30.2741, 120.1551, 12.2, "330101"),
    ("南京市", 32.0603, 118.7969, 9.3, "320101"),
    ("郑州市", 34.7466, 113.6254, 12.6, "410101"),
    ("长沙市", 28.2282, 112.9388, 10.0, "430101"),
    ("东莞市", 23.0207, 113.7518, 10.5, "441901"),
    ("沈阳市", 41.8057, 123.4315, 9.1, "210101"),
    ("青岛市", 36.0671, 120.3826, 10.1, "370201"),
    ("合肥市", 31.8206, 117.2272, 9.4, "340101"),
    ("佛山市", 23.0215, 113.1214, 9.5, "440601"),
    ("宁波市", 29.8683, 121.5440, 9.4, "330201"),
    ("昆明市", 25.0389, 102.7183, 8.5, "530101"),
    ("济南市", 36.6512, 117.1201, 9.2, "370101"),
    ("哈尔滨市", 45.8038, 126.5350, 10.0, "230101"),
    ("福州市", 26.0745, 119.2965, 8.3, "350101"),
    ("苏州市", 31.2989, 120.5853, 12.7, "320501"),
    ("大连市", 38.9140, 121.6147, 7.4, "210201"),
    ("厦门市", 24.4798, 118.0894, 5.2, "350201"),
    ("南宁市", 22.8170, 108.3665, 8.7, "450101"),
    ("长春市", 43.8171, 125.3235, 9.1, "220101"),
    ("石家庄市", 38.0428, 114.5149, 11.2, "130101"),
    ("南昌市", 28.6820, 115.8579, 6.3, "360101"),
    ("贵阳市", 26.6470, 106.6302, 6.0, "520101"),
    ("太原市", 37.8706, 112.5489, 5.3, "140101"),
    ("乌鲁木齐市", 43.8256, 87.6168, 4.1, "650101"),
    ("兰州市", 36.0611, 103.8343, 4.4, "620101"),
    ("海口市", 20.0440, 110.1999, 2.9, "460101"),
    ("呼和浩特市", 40.8424, 111.7492, 3.4, "150101"),
    ("拉萨市", 29.6500, 91.1000, 0.9, "540101"),
    ("银川市", 38.4872, 106.2309, 2.9, "640101"),
    ("西宁市", 36.6171, 101.7782, 2.5, "630101"),
    ("温州市", 28.0006, 120.6994, 9.6, "330301"),
)

CITY_NAMES: Final = np.array([c[0] for c in _CITIES])
CITY_LAT: Final = np.array([c[1] for c in _CITIES])
CITY_LON: Final = np.array([c[2] for c in _CITIES])
CITY_WEIGHTS: Final = np.array([c[3] for c in _CITIES]) / sum(c[3] for c in _CITIES)
CITY_CODES: Final = np.array([c[4] for c in _CITIES])
N_CITIES: Final = len(_CITIES)

CITY_DISTANCE_KM: Final = haversine_km(
    CITY_LAT[:, None], CITY_LON[:, None], CITY_LAT[None, :], CITY_LON[None, :]
)
"""Distance between city centres, ``(N_CITIES, N_CITIES)``."""


def far_city(rng: np.random.Generator, city: np.ndarray, min_km: float) -> np.ndarray:
    """For each city, a random other city at least ``min_km`` away (weighted by population)."""
    city = np.asarray(city, dtype=np.int64)
    u = rng.random(len(city))
    out = np.empty(len(city), dtype=np.int16)
    # NOTE: one searchsorted per origin city keeps memory linear in the number of queries.
    cum = np.cumsum((CITY_DISTANCE_KM >= min_km) * CITY_WEIGHTS[None, :], axis=1)
    order = np.argsort(city, kind="stable")
    bounds = np.searchsorted(city[order], np.arange(N_CITIES + 1))
    for c in range(N_CITIES):
        rows = order[bounds[c]: bounds[c + 1]]
        if len(rows):
            out[rows] = np.searchsorted(cum[c], u[rows] * cum[c, -1], side="right")
    return out


def other_city(rng: np.random.Generator, city: np.ndarray) -> np.ndarray:
    """For each city, a random different city (weighted by population)."""
    return far_city(rng, city, 1.0)
