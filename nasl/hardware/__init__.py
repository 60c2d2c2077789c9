"""Where work runs: devices and their locks, accelerators (device, precision, compile), the
OpenMP wait policy chosen before torch loads, and contention detection on shared CPUs."""
