"""`with_difficulty`: the named worlds, from today's to one where fraud adapts and hides.

A difficulty is a set of pattern sections of :class:`WorldConfig`. ``"default"`` is the world
every earlier model was built and judged on. ``"adaptive"`` is fraud that has learnt what
betrayed it (issue 17, item 3): rings spread over more devices and phones, applications come
weeks apart instead of in a burst, accounts borrow an honest history (they shop like honest
users before applying, or are real honest accounts bought from their owners), and mules and
farm accounts are opened months before they are used. Each change is a knob of its pattern's
section, so a world can take any of them alone; the preset takes them together. The strengths
were chosen on world statistics of small worlds and of the development seed
(docs/SIMULATOR.md, "Harder worlds"), never on a model's numbers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from typing import Final

from simulator.config import (
    AccountTakeoverConfig,
    DeviceFarmConfig,
    FraudRingConfig,
    MerchantCollusionConfig,
    PackagingConfig,
    SalesInflationConfig,
    SyntheticIdentityConfig,
    WorldConfig,
)

_PatternSections = dict[str, object]

_ADAPTIVE: Final[_PatternSections] = {
    "fraud_ring": FraudRingConfig(
        devices_per_account=0.5, phones_per_account=0.8, addresses_max=6,
        clean_device_prob=0.4, aged_account_prob=0.5, bought_account_prob=0.25,
        history_prob=0.6, new_account_days_max=90, burst_hours=21 * 24.0),
    "synthetic_identity": SyntheticIdentityConfig(
        nurture_days_min=30, nurture_days_max=120, history_prob=0.5, app_gap_days_max=21,
        own_device_prob=0.8),
    "account_takeover": AccountTakeoverConfig(dwell_prob=0.7),
    "merchant_collusion": MerchantCollusionConfig(
        aged_mule_prob=0.6, history_prob=0.6, window_days_min=45, window_days_max=90,
        shop_device_prob=0.15),
    "sales_inflation": SalesInflationConfig(),
    "intermediary_packaging": PackagingConfig(window_days_min=42, window_days_max=90),
    "device_farm": DeviceFarmConfig(
        devices_min=6, devices_max=20, accounts_per_sim=1.5, signup_days=21.0,
        apply_days=56.0, dormant_prob=0.6, history_prob=0.5, emulator_prob=0.4),
}

_DEFAULT: Final[_PatternSections] = {name: type(section)()
                                     for name, section in _ADAPTIVE.items()}

DIFFICULTIES: Final[dict[str, _PatternSections]] = {
    "default": _DEFAULT,
    "adaptive": _ADAPTIVE,
}
"""Difficulty name -> the pattern sections it sets; every other parameter is left alone."""


def with_difficulty(config: WorldConfig, difficulty: str) -> WorldConfig:
    """``config`` with the pattern sections of ``difficulty``.

    Args:
        config (WorldConfig): the world (size, seed, rates and honest population are kept).
        difficulty (str): a key of :data:`DIFFICULTIES`.

    Returns:
        WorldConfig: the same world with that difficulty's fraud.

    Raises:
        ValueError: on an unknown difficulty.
    """
    sections = DIFFICULTIES.get(difficulty)
    if sections is None:
        raise ValueError(f"difficulty must be one of {sorted(DIFFICULTIES)}, got {difficulty!r}")
    return replace(config, **sections)  # type: ignore[arg-type]


def difficulty_of(config: WorldConfig) -> str:
    """The name of the difficulty whose pattern sections ``config`` holds, else ``"custom"``."""
    for name, sections in DIFFICULTIES.items():
        if all(getattr(config, k) == v for k, v in sections.items()):
            return name
    return "custom"


def hiding_knobs(config: WorldConfig) -> dict[str, object]:
    """``"section.parameter" -> value`` for every pattern parameter that differs from today's
    world (what a difficulty changed), in section order."""
    out: dict[str, object] = {}
    for name, base in _DEFAULT.items():
        section = getattr(config, name)
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            if value != getattr(base, f.name):
                out[f"{name}.{f.name}"] = value
    return out
