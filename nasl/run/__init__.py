"""A run folder's tables and what they say: trials.csv, pareto.csv/json, env.json, and the
front's verdicts (ties, baselines, the knee) read from the rows."""
