"""GPUs as NVML sees them, without initialising CUDA or importing torch.

No driver, no GPU, or no permission all mean the same to xling: CPU mode.
"""

from __future__ import annotations


def cuda_device_count() -> int:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - any NVML failure means no usable GPU
        return 0
    try:
        return int(pynvml.nvmlDeviceGetCount())
    except Exception:  # noqa: BLE001
        return 0
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass
