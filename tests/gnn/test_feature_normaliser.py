"""`FeatureNormaliser`: z-scores fitted on training rows; a column constant there carries
nothing later."""

from __future__ import annotations

import numpy as np

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
