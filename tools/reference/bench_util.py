"""Timing helpers shared by bench_torch.py and bench_torch_ops.py."""
import os
import statistics
import time

import torch


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(fn, device, warmup, steps):
    """(median wall ms, fastest wall ms, median process CPU ms) per call. CPU time is summed over all
    threads. On a shared machine other jobs inflate the median; the fastest iteration is the better
    estimate of the uncontended time then (compare with the load average printed alongside)."""
    for _ in range(warmup):
        fn()
    sync(device)
    wall, cpu = [], []
    for _ in range(steps):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        sync(device)
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return statistics.median(wall), min(wall), statistics.median(cpu)


def print_load():
    """A comment line with the load average: the timings are only meaningful on a quiet machine."""
    try:
        with open("/proc/loadavg") as f:
            print(f"# loadavg {' '.join(f.read().split()[:3])} cpus={os.cpu_count()}", flush=True)
    except OSError:
        pass
