"""Paired data sets, synthetic low light and paired augmentations (numpy only)."""
