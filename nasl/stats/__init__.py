"""Statistics without torch: Pareto fronts and hypervolume, latency spreads and intervals, seed
noise and the confidence of front comparisons."""
