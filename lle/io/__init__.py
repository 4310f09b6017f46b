"""Image, video and camera I/O. No torch."""
