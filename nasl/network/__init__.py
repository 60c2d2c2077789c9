"""Networks: layer specs, the ArchConfig of a design, the one block library, the PyTorch model
built from it and its analytic costs (MACs, params, size)."""
