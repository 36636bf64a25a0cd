"""`FeatureNormaliser`: z-scores fitted on training rows; a column constant there carries
nothing later."""

from __future__ import annotations

import numpy as np
import pytest

from gnn.errors import GraphDataError
from gnn.features.feature_normaliser import FeatureNormaliser


def test_a_column_constant_in_training_maps_to_zero_whatever_it_becomes() -> None:
    x = np.array([[0.0, 1.0], [0.0, 3.0], [0.0, 5.0]])
    norm = FeatureNormaliser().fit(x)
    later = np.array([[1.0, 3.0], [7.0, 5.0]])
    z = norm(later)
    assert z[:, 0].tolist() == [0.0, 0.0]  # never seen to vary: no input to the model
    np.testing.assert_allclose(z[:, 1], (later[:, 1] - 3.0) / np.std([1.0, 3.0, 5.0]),
                               rtol=1e-6)
    again = FeatureNormaliser.from_state_dict(norm.state_dict())
    np.testing.assert_array_equal(again(later), z)


def test_one_column_apart_is_normalised_as_in_the_matrix() -> None:
    x = np.array([[0.0, 1.0, -2.0], [0.0, 3.0, 4.0], [0.0, 5.0, 40.0]])
    norm = FeatureNormaliser(clip=1.5).fit(x)
    later = np.array([[2.0, 0.0, 100.0], [3.0, 9.0, -7.0]])
    whole = norm(later)
    for j in (0, 1, 2, -1):
        np.testing.assert_array_equal(norm.column(j, later[:, j]), whole[:, j])
    with pytest.raises(GraphDataError, match="no column 3"):
        norm.column(3, later[:, 0])
    with pytest.raises(GraphDataError, match="before fit"):
        FeatureNormaliser().column(0, later[:, 0])
