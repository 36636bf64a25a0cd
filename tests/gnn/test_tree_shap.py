"""`TreeShap` gives LightGBM's own TreeSHAP (``pred_contrib``) on trained boosters."""

import lightgbm as lgb
import numpy as np
import pytest

from gnn.nn import TreeShap


def _data(rng: np.random.Generator, n: int = 3000, f: int = 6) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(n, f))
    x[:, 1] = np.round(x[:, 1])  # many exact zeros
    logit = 1.5 * x[:, 0] - np.abs(x[:, 1]) + x[:, 2] * x[:, 3] + np.sin(3 * x[:, 0])
    return x, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)


def _rows(rng: np.random.Generator, f: int = 6) -> np.ndarray:
    x = rng.normal(size=(400, f)) * 1.5
    x[rng.random(x.shape) < 0.15] = 0.0
    x[rng.random(x.shape) < 0.1] = np.nan
    x[rng.random(x.shape) < 0.02] = 1e-40
    x[0, :] = np.inf
    x[1, :] = -np.inf
    return x


def _train(x: np.ndarray, y: np.ndarray, **params: object) -> lgb.Booster:
    base = {"objective": "binary", "num_leaves": 63, "max_depth": 6, "learning_rate": 0.1,
            "min_data_in_leaf": 5, "verbosity": -1, "seed": 7, "deterministic": True,
            "num_threads": 1}
    return lgb.train({**base, **params}, lgb.Dataset(x, y), num_boost_round=40)


@pytest.mark.parametrize("missing", ["nan", "zero", "none"])
def test_equals_lightgbm_pred_contrib_with_missing_values_zeros_and_repeated_splits(missing):
    rng = np.random.default_rng(3)
    x, y = _data(rng)
    x[rng.random(x.shape) < 0.1] = np.nan if missing != "none" else 0.0
    params = {"nan": {}, "zero": {"zero_as_missing": True}, "none": {"use_missing": False}}
    booster = _train(x, y, **params[missing])
    dump = booster.dump_model()
    rows = _rows(rng)

    want = booster.predict(rows, pred_contrib=True)
    got = TreeShap.from_booster(booster)(rows)

    assert got.shape == want.shape == (len(rows), x.shape[1] + 1)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
    # a path splits on the same feature more than once somewhere (the unwinding case)
    assert any(_repeats(t["tree_structure"]) for t in dump["tree_info"])


def test_the_missing_types_the_boosters_learned_cover_nan_and_zero():
    rng = np.random.default_rng(3)
    x, y = _data(rng)
    x[rng.random(x.shape) < 0.1] = np.nan
    kinds = {n["missing_type"] for booster in (_train(x, y), _train(x, y, zero_as_missing=True))
             for t in booster.dump_model()["tree_info"] for n in _splits(t["tree_structure"])}
    assert {"NaN", "Zero"} <= kinds


def test_a_row_does_not_depend_on_the_others_and_the_shares_sum_to_the_raw_score():
    rng = np.random.default_rng(5)
    x, y = _data(rng)
    booster = _train(x, y)
    shap = TreeShap.from_booster(booster)
    rows = _rows(rng)[2:]

    together = shap(rows)
    alone = np.concatenate([shap(rows[i:i + 1]) for i in range(len(rows))])

    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-12)
    np.testing.assert_allclose(together.sum(axis=1), booster.predict(rows, raw_score=True),
                               rtol=0, atol=1e-9)


def test_trees_of_one_leaf_only_move_the_expected_value():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(200, 3))
    booster = _train(x, (rng.random(200) < 0.3).astype(float), min_data_in_leaf=500)
    rows = rng.normal(size=(5, 3))

    got = TreeShap.from_booster(booster)(rows)

    np.testing.assert_allclose(got, booster.predict(rows, pred_contrib=True), atol=1e-12)
    assert np.all(got[:, :3] == 0)


def test_categorical_splits_fall_back_to_lightgbm():
    rng = np.random.default_rng(13)
    x, y = _data(rng)
    x[:, 4] = rng.integers(0, 6, len(x))
    y = ((x[:, 4] == 2) | (x[:, 0] > 1)).astype(float)
    booster = lgb.train({"objective": "binary", "verbosity": -1, "seed": 1, "num_threads": 1},
                        lgb.Dataset(x, y, categorical_feature=[4]), num_boost_round=10)
    with pytest.raises(ValueError, match="numerical"):
        TreeShap.from_booster(booster)

    explain = TreeShap.of(booster)

    rows = x[:20]
    np.testing.assert_array_equal(explain(rows), booster.predict(rows, pred_contrib=True))


def test_inputs_of_the_wrong_width_are_refused():
    rng = np.random.default_rng(17)
    shap = TreeShap.from_booster(_train(*_data(rng)))
    with pytest.raises(ValueError, match=r"\[rows, 6\]"):
        shap(np.zeros((2, 5)))


def _splits(node: dict) -> list[dict]:
    if "leaf_value" in node:
        return []
    return [node, *_splits(node["left_child"]), *_splits(node["right_child"])]


def _repeats(node: dict, seen: frozenset[int] = frozenset()) -> bool:
    if "leaf_value" in node:
        return False
    f = node["split_feature"]
    return f in seen or any(_repeats(node[c], seen | {f}) for c in ("left_child", "right_child"))


def test_deep_trees_with_long_paths_over_many_features():
    rng = np.random.default_rng(19)
    x = rng.normal(size=(4000, 14))
    y = (rng.random(4000) < 1 / (1 + np.exp(-(x[:, :7].sum(axis=1) + x[:, 7] * x[:, 8])))
         ).astype(float)
    booster = _train(x, y, max_depth=-1, num_leaves=255, min_data_in_leaf=2)
    depth = max(_depth(t["tree_structure"]) for t in booster.dump_model()["tree_info"])
    assert depth > 12
    rows = _rows(rng, f=14)

    got = TreeShap.from_booster(booster)(rows)

    np.testing.assert_allclose(got, booster.predict(rows, pred_contrib=True), rtol=0, atol=1e-9)


def _depth(node: dict) -> int:
    if "leaf_value" in node:
        return 0
    return 1 + max(_depth(node["left_child"]), _depth(node["right_child"]))
