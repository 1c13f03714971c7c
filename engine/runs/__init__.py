"""A run's folder and its log, the truth every other part reads: where files live, the
events a run appends and its status, the state folded from them, how files are followed
and rewritten, who holds a run. Pure Python: the database imports it."""
