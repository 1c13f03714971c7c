"""xling's engine: everything that runs without a screen (see docs/architecture.md).

Kept import-free so that ``db`` and the front ends can use the light modules
(events, layout, spec, schedule) without paying for torch.
"""
