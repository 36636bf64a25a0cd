"""GPU benchmark of the feature kernels: CuPy vs NumPy on the same world, same numbers checked,
and each path's time against its own memory floor. Run by ``scripts/gpu_check.sh``.

    python bench/gpu_kernels.py --users 1000000 --out gpu-out/kernels-bench.md

Exits 1 if the GPU and CPU results differ, 2 if no CUDA device is usable.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import kernel_world as kw
import kernels as K


def timed(fn: Callable[[], Any], sync: Callable[[], None], repeats: int) -> tuple[Any, float]:
    times, out = [], None
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        out = fn()
        sync()
        times.append(time.perf_counter() - t)
    return out, float(np.median(times))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    kw.add_world_arguments(ap, 1_000_000)
    ap.add_argument("--cpu-repeats", type=int, default=2)
    ap.add_argument("--gpu-repeats", type=int, default=5)
    ap.add_argument("--out", default=None, help="also write the Markdown report here")
    ap.add_argument("--self-test", action="store_true",
                    help="run the script's logic with NumPy standing in for CuPy (no GPU)")
    args = ap.parse_args()
    scale = 100 if args.self_test else 1
    if args.self_test:
        gpu, name = K.select_backend("cpu"), "none (self-test: NumPy stands in for CuPy)"
    elif not K.cuda_available():
        print("no usable CUDA device", file=sys.stderr)
        return 2
    else:
        gpu = K.select_backend("cuda")
        props = gpu.xp.cuda.runtime.getDeviceProperties(0)
        name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    cp = gpu.xp

    w, source = kw.world_from_arguments(args)
    host = w.arrays()
    t = time.perf_counter()
    device = {k: gpu.asarray(v) for k, v in host.items()}
    gpu.synchronize()
    h2d = time.perf_counter() - t

    nothing = lambda: None  # noqa: E731
    ref, cpu_s = timed(lambda: kw.batch_features(host, w, np), nothing, args.cpu_repeats)
    _ = kw.batch_features(device, w, cp)  # compile the kernels, warm the memory pool
    got, gpu_s = timed(lambda: kw.batch_features(device, w, cp), gpu.synchronize,
                       args.gpu_repeats)
    bad = [k for k in ref if not np.allclose(gpu.asnumpy(got[k]).astype(np.float64),
                                             np.asarray(ref[k], dtype=np.float64),
                                             rtol=1e-9, atol=1e-9, equal_nan=True)]
    moved = w.nbytes() + kw.output_nbytes(ref)
    bw_cpu = kw.copy_bandwidth(np)
    bw_gpu = kw.copy_bandwidth(cp, (4 << 30) // scale, sync=gpu.synchronize)

    # the three hand-written kernels alone, on arrays large enough to fill the GPU
    rng = np.random.default_rng(1)
    n = 50_000_000 // scale
    pts = [rng.uniform(-90, 90, n), rng.uniform(-180, 180, n),
           rng.uniform(-90, 90, n), rng.uniform(-180, 180, n)]
    dpts = [gpu.asarray(p) for p in pts]
    deg = rng.integers(0, 100, 1_000_000 // scale)
    indptr = np.zeros(deg.size + 1, np.int64)
    np.cumsum(deg, out=indptr[1:])
    vals = rng.normal(size=int(indptr[-1]))
    d_indptr, d_vals = gpu.asarray(indptr), gpu.asarray(vals)
    q = 5_000_000 // scale
    hist = rng.lognormal(5, 1, 40_000_000 // scale)
    start = rng.integers(0, hist.size - 64, q)
    end = start + rng.integers(0, 33, q)
    d_hist, d_start, d_end = gpu.asarray(hist), gpu.asarray(start), gpu.asarray(end)
    median = lambda xp, h, s, e: K._window.slice_median(xp, h, s, e, want_mad=True)  # noqa: E731,SLF001
    micro = [
        ("haversine_km (ElementwiseKernel)", 5 * 8 * n,
         lambda: K.haversine_km(*pts), lambda: K.haversine_km(*dpts)),
        ("segment_sum (RawKernel, warp per segment)", vals.nbytes + indptr.nbytes + 8 * deg.size,
         lambda: K.segment_sum(indptr, vals), lambda: K.segment_sum(d_indptr, d_vals)),
        ("median + MAD of last <=32 (RawKernel)", (8 * 32 + 16 + 16) * q,
         lambda: median(np, hist, start, end), lambda: median(cp, d_hist, d_start, d_end)),
    ]
    micro_rows = []
    for label, nbytes, on_cpu, on_gpu in micro:
        a, c_s = timed(on_cpu, nothing, 1)
        on_gpu()
        b, g_s = timed(on_gpu, gpu.synchronize, 5)
        ok = all(np.allclose(gpu.asnumpy(y), x, rtol=1e-12, equal_nan=True)
                 for x, y in zip(a if isinstance(a, tuple) else (a,),
                                 b if isinstance(b, tuple) else (b,), strict=True))
        if not ok:
            bad.append(label)
        micro_rows.append(f"| {label} | {c_s * 1e3:.1f} ms | {g_s * 1e3:.2f} ms | "
                          f"{c_s / g_s:.0f}x | {g_s / (nbytes / bw_gpu):.1f}x | "
                          f"{'yes' if ok else 'NO'} |")

    report = "\n".join([
        f"- GPU: {name}; host: {kw.machine()}",
        f"- world: {w.n_users:,} users, {len(w.login_user):,} logins, {len(w.order_user):,} "
        f"orders, {len(w.app_user):,} applications ({source}); "
        f"host→device copy of its {w.nbytes() / 2**30:.2f} GiB: {h2d:.2f} s (not in the times)",
        f"- same numbers on GPU and CPU: "
        f"{'yes, all ' + str(len(ref)) + ' features' if not bad else 'NO: ' + ', '.join(bad)}",
        f"- measured copy bandwidth: CPU {bw_cpu / 1e9:.1f} GB/s, GPU {bw_gpu / 1e9:.0f} GB/s",
        "",
        "| batch feature pass | median time | floor (bytes / bandwidth) | time / floor |",
        "|---|---|---|---|",
        f"| NumPy, {args.cpu_repeats} runs | {cpu_s:.2f} s | {moved / bw_cpu * 1e3:.1f} ms | "
        f"{cpu_s / (moved / bw_cpu):.0f}x |",
        f"| CuPy, {args.gpu_repeats} runs | {gpu_s * 1e3:.1f} ms | {moved / bw_gpu * 1e3:.2f} ms | "
        f"{gpu_s / (moved / bw_gpu):.0f}x |",
        "",
        f"- GPU speed-up on the whole pass: **{cpu_s / gpu_s:.1f}x**",
        "",
        "| kernel alone | NumPy | CuPy (median of 5) | speed-up | CuPy time / GPU floor | same |",
        "|---|---|---|---|---|---|",
        *micro_rows,
    ])
    print(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write("## Feature kernels on GPU\n\n" + report + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
