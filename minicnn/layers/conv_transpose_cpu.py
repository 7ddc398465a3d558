"""Placeholder: filled in by the layer-family work in progress."""

FUNCTIONAL = []
