"""The compute ceilings: the kernels' FLOPs as PyTorch's own counter counts them, the theoretical peak from the
CPU's instruction sets and clock."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from videoml.bench.ceilings import PEAK_KERNELS, peak_kernel, theoretical_peak

CPUINFO = "processor\t: 0\ncpu MHz\t\t: {mhz}\nflags\t\t: fpu sse2 {flags}\n"


@pytest.mark.parametrize("kind, shape", PEAK_KERNELS["cpu"])
def test_a_peak_kernel_counts_the_flops_torch_counts(kind, shape):
    call, flops = peak_kernel(kind, shape, torch.float32, torch.device("cpu"))
    with FlopCounterMode(display=False) as counter:
        call()
    assert flops == counter.get_total_flops()


def test_the_theoretical_peak_is_the_widest_unit_times_cores_and_clock():
    avx512 = theoretical_peak("fp32", 2, CPUINFO.format(mhz="2100.000", flags="avx2 fma avx512f"))
    assert avx512["flops_per_s"] == pytest.approx(64 * 2 * 2.1e9) and avx512["basis"].startswith("AVX-512")
    avx2 = theoretical_peak("fp32", 4, CPUINFO.format(mhz="3000.000", flags="avx2 fma"))
    assert avx2["flops_per_s"] == pytest.approx(32 * 4 * 3e9)
    amx = theoretical_peak("bf16", 1, CPUINFO.format(mhz="2000", flags="avx512f avx512_bf16 amx_bf16"))
    assert amx["flops_per_cycle_per_core"] == 1024
    assert theoretical_peak("bf16", 1, CPUINFO.format(mhz="2000", flags="avx512f avx2")) is None  # no bf16 unit
    hidden = theoretical_peak("fp32", 2, "flags\t\t: avx512f\n")  # a VM that hides the clock
    assert hidden["clock_ghz"] is None and hidden["flops_per_s"] is None and hidden["flops_per_cycle_per_core"] == 64


@pytest.mark.parametrize("measured, shown", [
    (200e9, "| fp32 | 200.0 | matmul 2048x2048x2048 | 269 (AVX-512: 2 FMA units x 16 float32 lanes x 2, x 2 cores x "
            "2.10 GHz, the stated clock) | 74% |"),
    # above the figure at the stated clock: the cores boost, and the row says to at least which clock
    (400e9, "| 149%: the cores run above the stated clock (implies ≥ 3.12 GHz) |"),
])
def test_the_report_holds_the_measured_peak_against_the_theoretical_one(measured, shown):
    from videoml.bench.diagnose import Summary
    from videoml.bench.records import Cell, Run
    from videoml.bench.report import table

    theory = theoretical_peak("fp32", 2, CPUINFO.format(mhz="2100.000", flags="avx2 fma avx512f"))
    peaks = {"fp32": {"flops_per_s": measured, "kernel": "matmul 2048x2048x2048", "theoretical": theory}}
    config = {"name": "t", "device": "cpu", "threads": 2, "models": ["m"], "frameworks": {"torch": ["cl3d"]},
              "batch_sizes": [2]}
    cell = Cell("model", "torch", "m", "cl3d", stage="forward", batch_size=2)
    text = table(Summary(config, {"peaks": peaks, "flops_per_clip": {"m": 1e9}}, [Run(cell.name, cell)], []))
    assert shown in text
