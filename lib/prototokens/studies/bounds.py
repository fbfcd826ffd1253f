"""Physical limits of a device: how fast one forward pass and one decoding step could possibly be.

- One forward pass over N tokens costs about ``2 * params * N`` FLOPs (each weight: one multiply
  and one add per token; attention scores are left out, as in the usual estimate), so its
  **compute bound** is ``peak_flops / (2 * params)`` tokens/s.
- Autoregressive decoding at batch B must read every weight once per step to emit B tokens, so
  its **memory bound** is ``B * bandwidth / (params * bytes_per_param)`` tokens/s (the KV cache
  is left out: it only lowers the bound).

Peaks come from a table of known devices (:data:`KNOWN_DEVICES`) or, for a device not in the
table (a CPU), from a short measurement on the spot (:func:`measure_peaks`: one matmul and one
memcpy). Each measured speed is then reported as a fraction of its bound.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from prototokens.studies.decode_timing import time_call

_TB = 1e12


@dataclass(frozen=True)
class Peaks:
    """Peak dense matmul FLOP/s per dtype and memory bandwidth (bytes/s) of one device."""

    device_name: str
    flops: dict  # dtype name ("bfloat16", "float32", ...) -> FLOP/s
    bandwidth: float  # bytes/s
    source: str  # where the numbers come from ("table: ..." or "measured on the spot")

    def flops_for(self, dtype: torch.dtype) -> float:
        name = str(dtype).removeprefix("torch.")
        if name not in self.flops:
            raise ValueError(f"no peak FLOP/s for {name} on {self.device_name}: {self.flops}")
        return float(self.flops[name])

    def as_dict(self) -> dict:
        return asdict(self)


# Dense (no sparsity) peaks. H200: the attainable numbers measured on the reference H200
# (about 790 TFLOP/s bf16 in large matmuls, about 4.3 TB/s in copies); the others: vendor specs.
KNOWN_DEVICES: dict[str, Peaks] = {
    "NVIDIA H200": Peaks(
        "NVIDIA H200",
        {"bfloat16": 790 * _TB, "float16": 790 * _TB, "float32": 67 * _TB},
        4.3 * _TB,
        "table: attainable on the reference H200 (spec 989 TFLOP/s bf16, 4.8 TB/s)",
    ),
    "NVIDIA H100 80GB HBM3": Peaks(
        "NVIDIA H100 80GB HBM3",
        {"bfloat16": 989 * _TB, "float16": 989 * _TB, "float32": 67 * _TB},
        3.35 * _TB,
        "table: NVIDIA H100 SXM spec",
    ),
    "NVIDIA A100-SXM4-80GB": Peaks(
        "NVIDIA A100-SXM4-80GB",
        {"bfloat16": 312 * _TB, "float16": 312 * _TB, "float32": 19.5 * _TB},
        2.04 * _TB,
        "table: NVIDIA A100 80GB SXM spec",
    ),
}


def device_name(device: torch.device | str) -> str:
    """A human name of the device: the GPU's name, or ``cpu (<n> threads)``."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def measure_peaks(
    device: torch.device | str = "cpu",
    dtypes: tuple[torch.dtype, ...] = (torch.float32,),
    size: int | None = None,
    copy_mib: int | None = None,
    repeats: int = 3,
) -> Peaks:
    """Peaks measured on the spot: the best of ``repeats`` square matmuls of ``size`` per dtype
    (FLOP/s = 2 size^3 / t) and of a copy of ``copy_mib`` MiB (bytes/s = 2 x bytes / t: one read,
    one write). Best-of rather than median: a peak is what the device can do when undisturbed."""
    device = torch.device(device)
    size = size or (1024 if device.type == "cpu" else 8192)
    copy_mib = copy_mib or (128 if device.type == "cpu" else 2048)
    flops = {}
    for dt in dtypes:
        a = torch.randn(size, size, device=device).to(dt)
        b = torch.randn(size, size, device=device).to(dt)
        t = time_call(lambda: a @ b, device, repeats).min_s
        flops[str(dt).removeprefix("torch.")] = 2 * size**3 / t
    src = torch.empty(copy_mib * 2**20, dtype=torch.uint8, device=device).fill_(1)
    dst = torch.empty_like(src)
    t = time_call(lambda: dst.copy_(src), device, repeats).min_s
    return Peaks(device_name(device), flops, 2 * src.numel() / t, "measured on the spot")


_MEASURED: dict[tuple[str, str], Peaks] = {}


def device_peaks(device: torch.device | str, dtype: torch.dtype = torch.float32) -> Peaks:
    """The table's peaks for a known GPU, else a measurement on the spot (in ``dtype``; measured
    once per process and device)."""
    name = device_name(device)
    if name in KNOWN_DEVICES:
        return KNOWN_DEVICES[name]
    key = (name, str(dtype))
    if key not in _MEASURED:
        _MEASURED[key] = measure_peaks(device, dtypes=(dtype,))
    return _MEASURED[key]


def compute_bound_tok_s(params: int, peak_flops: float) -> float:
    """Tokens/s of a forward pass that ran at the peak: peak / (2 * params)."""
    if params <= 0 or peak_flops <= 0:
        raise ValueError(f"need params > 0 and peak_flops > 0, got {params}, {peak_flops}")
    return peak_flops / (2.0 * params)


def decode_bound_tok_s(
    params: int, bytes_per_param: float, bandwidth: float, batch_size: int = 1
) -> float:
    """Tokens/s of decoding that reads every weight once per step at ``bandwidth`` bytes/s:
    ``batch_size`` tokens per read of ``params * bytes_per_param`` bytes."""
    if params <= 0 or bytes_per_param <= 0 or bandwidth <= 0:
        raise ValueError("params, bytes_per_param and bandwidth must be positive")
    return batch_size * bandwidth / (params * bytes_per_param)


def bytes_per_param(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()
