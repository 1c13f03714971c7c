"""Placing runs: CPU slots, and GPUs chosen from a fake NVML fleet (no GPU needed)."""

from __future__ import annotations

from engine.launch.devices import FakeSource, fake_gpu
from engine.launch.pools import CpuPool, GpuPool


def fleet() -> FakeSource:
    return FakeSource(
        [
            fake_gpu(0),  # idle
            fake_gpu(1, memory_used_mb=30_000, utilization=95, processes=[(4242, 30_000, "python train.py")]),
            fake_gpu(2),  # idle
            fake_gpu(3, mig=True),  # MIG: never scheduled
        ]
    )


def test_cpu_pool_splits_cores_and_caps_slots():
    pool = CpuPool(2)
    a, b = pool.acquire("a"), pool.acquire("b")
    assert a.device == b.device == "cpu" and a.threads >= 1
    assert pool.acquire("c") is None
    pool.release("a")
    assert pool.acquire("c") is not None


def test_gpu_pool_skips_foreign_busy_and_mig_and_pins_each_worker():
    pool = GpuPool(None, source=fleet())
    assert pool.capacity == 3
    first, second = pool.acquire("r1"), pool.acquire("r2")
    assert {first.gpu, second.gpu} == {0, 2}
    assert first.env == {"CUDA_VISIBLE_DEVICES": str(first.gpu), "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    # both free GPUs hold one of ours: the third run waits instead of doubling up
    assert pool.acquire("r3") is None
    assert "waiting for a free GPU" in pool.waiting_reason()
    pool.release("r1")
    assert pool.acquire("r3").gpu == first.gpu


def test_gpu_pool_runs_per_gpu_and_allowed_list():
    pool = GpuPool([2], runs_per_gpu=2, source=fleet())
    assert [pool.acquire(r).gpu for r in ("a", "b")] == [2, 2]
    assert pool.acquire("c") is None
    assert GpuPool([1], source=fleet()).acquire("x") is None  # someone else's job is on GPU 1


def test_gpu_pool_without_gpus_explains():
    pool = GpuPool(None, source=FakeSource([], reason="no NVIDIA driver (NVML not found)"))
    assert pool.acquire("a") is None
    assert "no GPU" in pool.waiting_reason()


def test_gpu_pool_does_not_count_the_launchers_own_workers_as_foreign():
    """The launcher hands its live worker pids to each acquire: their memory is xling's own."""
    assert GpuPool([1], source=fleet()).acquire("x", ours=[4242]).gpu == 1
    assert GpuPool([1], source=fleet()).acquire("x", ours=[4243]) is None
