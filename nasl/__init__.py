"""nasl: hardware-aware neural-architecture search for lightweight CNNs."""

__version__ = "0.1.0"
