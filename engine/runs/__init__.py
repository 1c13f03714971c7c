"""A run's folder and its log, the truth every other part reads: where files live, the
events a run appends, who holds a run. Pure Python: the database imports it."""
