from __future__ import annotations

import numpy as np
import pytest

import kernels
from kernels import (
    BackendUnavailableError,
    MixedBackendError,
    cuda_available,
    get_array_module,
    select_backend,
)
from kernels import _backend


def test_public_names_are_exported() -> None:
    for name in kernels.__all__:
        assert hasattr(kernels, name), name


def test_cpu_is_numpy() -> None:
    backend = select_backend("cpu")
    assert backend.xp is np and not backend.is_gpu
    a = backend.asarray([1, 2, 3])
    assert backend.asnumpy(a).tolist() == [1, 2, 3]
    backend.synchronize()


def test_unknown_preference_names_the_argument() -> None:
    with pytest.raises(ValueError, match="prefer must be one of"):
        select_backend("tpu")  # type: ignore[arg-type]


def test_auto_falls_back_and_cuda_refuses_without_a_device() -> None:
    if cuda_available():
        pytest.skip("a CUDA device is usable here")
    assert select_backend("auto").xp is np
    with pytest.raises(BackendUnavailableError):
        select_backend("cuda")


def test_numpy_arrays_get_numpy() -> None:
    assert get_array_module(np.zeros(2), None, np.ones(1)) is np
    assert get_array_module() is np


class _BrokenRuntime:
    """``import cupy`` works on a machine without a GPU; the first device call fails."""

    @staticmethod
    def getDeviceCount() -> int:  # noqa: N802 - CuPy's name
        raise RuntimeError("cudaErrorInsufficientDriver")


class _FakeCupy:
    class cuda:  # noqa: N801 - mirrors the module layout
        runtime = _BrokenRuntime


def test_probe_is_for_a_device_not_the_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_backend, "_cupy", _FakeCupy)
    assert _backend.cuda_available.__wrapped__() is False


def test_probe_is_memoised() -> None:
    assert cuda_available() is cuda_available()
    assert cuda_available.cache_info().hits >= 1


@pytest.mark.gpu
def test_mixed_arrays_are_refused() -> None:
    if not cuda_available():
        pytest.skip("no usable CUDA device")
    gpu = select_backend("cuda")
    with pytest.raises(MixedBackendError):
        kernels.segment_sum(gpu.asarray(np.array([0, 1])), np.array([1.0]))


@pytest.mark.gpu
def test_round_trip_is_explicit() -> None:
    if not cuda_available():
        pytest.skip("no usable CUDA device")
    gpu = select_backend("cuda")
    x = gpu.asarray(np.arange(5.0))
    assert get_array_module(x) is gpu.xp
    assert isinstance(gpu.asnumpy(x * 2), np.ndarray)


def _nvrtc():
    try:
        from cuda.bindings import nvrtc
    except ImportError:
        return None
    return nvrtc


_COMPILE: str = """
import sys
from cuda.bindings import nvrtc
code, include = sys.stdin.read(), sys.argv[1]
err, prog = nvrtc.nvrtcCreateProgram(code.encode(), b"k.cu", 0, [], [])
assert err == nvrtc.nvrtcResult.NVRTC_SUCCESS
opts = [b"--gpu-architecture=compute_90", b"-std=c++17"] + ([b"-I" + include.encode()]
                                                            if include else [])
(err,) = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
_, size = nvrtc.nvrtcGetProgramLogSize(prog)
log = b" " * size
nvrtc.nvrtcGetProgramLog(prog, log)
sys.stdout.write(log.decode(errors="replace"))
sys.exit(0 if err == nvrtc.nvrtcResult.NVRTC_SUCCESS else 1)
"""


@pytest.mark.parametrize("source", _backend.SOURCES, ids=lambda s: s.name)
def test_cuda_sources_compile(source: _backend.CudaSource) -> None:
    """Every kernel's CUDA C++ compiles with NVRTC for Hopper, on a machine with no GPU.

    NOTE: in a process of its own: after NVRTC has compiled in the test process, torch's
    weights-only loading of a model saved later there fails (the model tests that run after).
    """
    import subprocess
    import sys

    if _nvrtc() is None:
        pytest.skip("NVRTC (cuda-bindings) is not installed")
    code = source.code
    if source.kind == "elementwise":  # the preamble's helpers, used by a stand-in kernel
        code += '\nextern "C" __global__ void probe(double* x) { x[0] = haversine_km(x[0], x[1], x[2], x[3]); }\n'
    done = subprocess.run([sys.executable, "-c", _COMPILE, _cuda_include() or ""],
                          input=code, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def _cuda_include() -> str | None:
    """Where ``math_constants.h`` lives (CuPy and NVRTC wheels ship CUDA headers)."""
    import glob
    import site

    for base in site.getsitepackages():
        for hit in glob.glob(f"{base}/nvidia/**/include/math_constants.h", recursive=True):
            return hit.rsplit("/", 1)[0]
    return None
