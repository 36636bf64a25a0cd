"""The one module that imports CuPy: backend flags, selection and GPU kernel factories.

``import cupy`` succeeds on a machine without a GPU and only the first device call fails
(``CUDARuntimeError``), so :func:`cuda_available` probes a real device round-trip once and
memoises the answer; :data:`HAS_CUPY` only says the library imported.

Every other module gets CuPy through :func:`get_array_module` (the module of its input arrays)
and compiles its GPU kernels through :func:`lazy_raw_kernel` / :func:`lazy_elementwise_kernel`,
which define the kernel once at module level and compile it on first use.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

import numpy as np

from kernels.errors import BackendUnavailableError, MixedBackendError
from kernels.typing import Array, BackendName

try:
    import cupy as _cupy
except ImportError:  # pragma: no cover - depends on the machine
    _cupy = None
except Exception:  # pragma: no cover - a broken CUDA install must not break CPU users
    # NOTE: a CuPy wheel for the wrong CUDA major version can fail at import with errors other
    # than ImportError; the CPU path must still work.
    _cupy = None

HAS_CUPY: bool = _cupy is not None
"""CuPy imported. Says nothing about a device: see :func:`cuda_available`."""

_BACKENDS: tuple[str, ...] = ("auto", "cpu", "cuda")


@functools.cache
def cuda_available() -> bool:
    """Whether a CUDA device is usable through CuPy (probed once, then memoised)."""
    if _cupy is None:
        return False
    try:
        if _cupy.cuda.runtime.getDeviceCount() < 1:
            return False
        # NOTE: a device count can succeed where allocation fails (driver too old for the
        # runtime, a MIG slice without memory); a real round-trip is the only honest probe.
        return bool(int(_cupy.arange(3).sum().item()) == 3)
    except Exception:  # CUDARuntimeError, CompileException, ...: any failure means no device
        return False


def is_device_array(a: Any) -> bool:
    """Whether ``a`` is a CuPy ndarray."""
    return _cupy is not None and isinstance(a, _cupy.ndarray)


def get_array_module(*arrays: Any) -> ModuleType:
    """The array module of ``arrays``: CuPy if any of them is a CuPy array, else NumPy.

    Raises:
        MixedBackendError: if some arrays are CuPy and others NumPy (host and device arrays
            in one call; move them with :meth:`Backend.asarray` first).
    """
    device = [is_device_array(a) for a in arrays if a is not None]
    if any(device):
        host = [
            isinstance(a, np.ndarray) and a.ndim > 0 for a in arrays if a is not None
        ]
        if any(host):
            raise MixedBackendError(
                "some arrays are on the device (CuPy) and some on the host (NumPy); "
                "move them with Backend.asarray first"
            )
        assert _cupy is not None
        return _cupy
    return np


@dataclass(frozen=True)
class Backend:
    """An array backend with explicit host↔device copies.

    Args:
        name (str): ``"numpy"`` or ``"cupy"``.
        xp (ModuleType): the array module.
    """

    name: Literal["numpy", "cupy"]
    xp: ModuleType

    @property
    def is_gpu(self) -> bool:
        return self.name == "cupy"

    def asarray(self, a: Any, dtype: Any = None) -> Array:
        """Copy ``a`` onto this backend (host→device for CuPy; no copy if already there)."""
        return self.xp.asarray(a, dtype=dtype)

    def asnumpy(self, a: Any) -> np.ndarray:
        """Copy ``a`` back to a host NumPy array (device→host for CuPy)."""
        if is_device_array(a):
            return a.get()  # type: ignore[no-any-return]
        return np.asarray(a)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # NOTE: a module cannot be pickled or deep-copied; the name says which one it was.
        return (_backend_named, (self.name,))

    def synchronize(self) -> None:
        """Wait for queued device work (a no-op on NumPy); needed before timing GPU code."""
        if self.is_gpu:
            assert _cupy is not None
            _cupy.cuda.get_current_stream().synchronize()


CPU = Backend("numpy", np)


def _backend_named(name: str) -> Backend:
    if name == "numpy":
        return CPU
    if _cupy is None:
        raise BackendUnavailableError("a CuPy backend was unpickled where CuPy is missing")
    return Backend("cupy", _cupy)


def select_backend(prefer: BackendName = "auto") -> Backend:
    """Choose the array backend.

    Args:
        prefer (str, optional): ``"auto"`` (CuPy when a CUDA device is usable, else NumPy),
            ``"cpu"`` (always NumPy) or ``"cuda"`` (CuPy, or raise). (default: ``"auto"``)

    Raises:
        ValueError: on an unknown ``prefer``.
        BackendUnavailableError: if ``prefer="cuda"`` and no CUDA device is usable.
    """
    if prefer not in _BACKENDS:
        raise ValueError(f"prefer must be one of {_BACKENDS}, got {prefer!r}")
    if prefer == "cpu":
        return CPU
    if cuda_available():
        assert _cupy is not None
        return Backend("cupy", _cupy)
    if prefer == "cuda":
        reason = "CuPy is not installed" if _cupy is None else "no usable CUDA device"
        raise BackendUnavailableError(f"prefer='cuda' but {reason}")
    return CPU


# -- GPU kernel factories ----------------------------------------------------------------------


@dataclass(frozen=True)
class CudaSource:
    """CUDA C++ source of one kernel, kept so that tests can compile it without a device."""

    name: str
    code: str
    kind: Literal["raw", "elementwise"]


SOURCES: list[CudaSource] = []
"""Every kernel declared through the factories below (for the NVRTC compile test)."""


class LazyKernel:
    """A CuPy kernel declared at import and compiled on first call (memoised)."""

    def __init__(self, source: CudaSource, build: Any) -> None:
        self.source = source
        self._build = build
        self._kernel: Any = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._kernel is None:
            if _cupy is None:
                raise BackendUnavailableError(f"kernel {self.source.name} needs CuPy")
            self._kernel = self._build(_cupy)
        return self._kernel(*args, **kwargs)


def lazy_raw_kernel(code: str, name: str) -> LazyKernel:
    """Declare a ``cupy.RawKernel`` named ``name`` (an ``extern "C" __global__`` function)."""
    source = CudaSource(name, code, "raw")
    SOURCES.append(source)
    return LazyKernel(source, lambda cp: cp.RawKernel(code, name, options=("-std=c++17",)))


def lazy_elementwise_kernel(
    in_params: str, out_params: str, operation: str, name: str, preamble: str = ""
) -> LazyKernel:
    """Declare a ``cupy.ElementwiseKernel``; ``preamble`` holds its ``__device__`` helpers."""
    SOURCES.append(CudaSource(name, preamble, "elementwise"))
    return LazyKernel(
        CudaSource(name, preamble, "elementwise"),
        lambda cp: cp.ElementwiseKernel(in_params, out_params, operation, name, preamble=preamble),
    )


def launch_1d(kernel: LazyKernel, n: int, args: tuple[Any, ...], *, block: int = 256) -> None:
    """Launch a RawKernel with one thread per item over ``n`` items."""
    if n == 0:
        return
    grid = (n + block - 1) // block
    kernel((grid,), (block,), args)
