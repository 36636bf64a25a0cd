"""Kernel tests run one body per backend: NumPy always, CuPy where a CUDA device is usable.

A test takes the ``backend`` fixture, moves its inputs with ``backend.asarray``, calls the kernel
and compares ``backend.asnumpy`` of the result with a float64 reference written the obvious way.
The CuPy run is marked ``gpu`` (``scripts/gpu_check.sh`` selects it with ``-m gpu``) and skips
cleanly when no device is usable.
"""

from __future__ import annotations

import numpy as np
import pytest

from kernels import Backend, cuda_available, select_backend


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "cupy":
        if not cuda_available():
            pytest.skip("no usable CUDA device")
        return select_backend("cuda")
    return select_backend("cpu")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261129)
