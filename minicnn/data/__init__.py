"""Datasets, loaders and augmentations (placeholder: filled in by the data work in progress)."""
