"""Export steps: one small module per target. Importing this package imports no runtime."""
