"""xling's engine: everything that runs without a screen (see docs/architecture.md).

Subpackages by concern: ``config`` (what was asked), ``data`` (text and tokens),
``runs`` (a run's folder and log), ``backends`` (where a worker runs), ``launch``
(queue and launcher), ``analysis`` (what a model is measured by). At the top: the
model, its fused loss, the trainer and the worker entry point. Kept import-free so
that ``db`` and the front ends can use the light modules without paying for torch.
"""
