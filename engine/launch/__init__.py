"""Getting runs trained: the queue, each run's state folded from its log, the launcher
that starts workers through a backend, and where they go (CPU slots, GPUs via NVML)."""
