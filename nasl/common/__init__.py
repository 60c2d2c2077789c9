"""What every layer shares (no torch): errors, names and units, the trial record and the
search's events, input guards, signal handling, process owners of trials."""
