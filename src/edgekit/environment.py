"""What the numbers were measured on: CPU, ISA flags, cores, versions.

Int8 speed depends on the instruction set (VNNI, AMX) and float numerics on
bf16 support, so the flags that matter are recorded next to every result.
Nothing here imports a runtime: versions come from package metadata.
"""

import importlib.metadata
import os
import platform
import sys
from pathlib import Path
from typing import Any

import psutil

from edgekit import __version__

# The CPU flags that change what int8 and float kernels can do.
ISA_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "asimd",
    "asimddp",
    "sve",
    "i8mm",
)
PACKAGES = ("numpy", "ai-edge-litert", "tflite-runtime", "onnxruntime", "openvino")
GOVERNOR = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")


def describe_environment() -> dict[str, Any]:
    """Collect the machine and software description recorded with results."""
    model, flags = _cpu_model_and_flags()
    return {
        "cpu": {
            "model": model,
            "architecture": platform.machine(),
            "flags": [f for f in ISA_FLAGS if f in flags],
            "physical_cores": psutil.cpu_count(logical=False),
            "logical_cores": psutil.cpu_count(logical=True),
            "governor": _read_text(GOVERNOR),
        },
        "memory_mb": round(psutil.virtual_memory().total / 2**20),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "edgekit": __version__,
        "packages": package_versions(),
    }


def package_versions() -> dict[str, str | None]:
    """Installed versions of numpy and each runtime; None when absent."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def physical_cores() -> int:
    """Physical cores of this machine (logical if unknown), at least 1."""
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def _cpu_model_and_flags() -> tuple[str, set[str]]:
    # /proc/cpuinfo is Linux only; elsewhere platform gives a model string and
    # the flags stay unknown rather than guessed.
    info = _read_text(Path("/proc/cpuinfo")) or ""
    model, flags = "", set()
    for line in info.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model", "Hardware") and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return model or platform.processor() or sys.platform, flags


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
