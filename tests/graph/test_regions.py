"""`graph.province_of`: the declared home city to its province, never the coordinates."""

from __future__ import annotations

from graph import PROVINCES, UNKNOWN_PROVINCE, province_of
from simulator._geo import CITY_CODES, CITY_NAMES


def test_every_simulated_city_is_in_the_province_its_admin_code_says() -> None:
    for name, code in zip(CITY_NAMES.tolist(), CITY_CODES.tolist(), strict=True):
        assert province_of(name) == PROVINCES[code[:2]], name


def test_spellings_of_one_city_meet_and_unknown_ones_say_so() -> None:
    assert province_of("上海市") == province_of("上海") == province_of(" shanghai ") == "Shanghai"
    assert province_of("Xi'an") == province_of("XIAN") == province_of("西安市") == "Shaanxi"
    assert province_of("Urumqi") == "Xinjiang"
    assert province_of(None) == province_of("") == province_of("Atlantis") == UNKNOWN_PROVINCE
