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
