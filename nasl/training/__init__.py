"""Proxy training: named recipes, on-device augmentation, the training loop and its evaluation."""
