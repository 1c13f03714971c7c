"""Which runs an experiment's results are made of: those of its current definition.

An edited spec gives new run ids; the older runs stay in ``runs`` (their folders are
the user's) but leave the report, the laws, TEff and the seed summaries. One SQL
predicate, on a ``runs`` row aliased ``r``, shared by every query that reports.
"""

CURRENT = (
    "list_contains(coalesce((SELECT x.run_ids FROM experiments x WHERE x.name = r.experiment), [r.run_id]), r.run_id)"
)
