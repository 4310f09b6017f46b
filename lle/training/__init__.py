"""Losses, metrics and the training loop (requires torch)."""
