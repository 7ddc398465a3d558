"""Placeholder: filled in by the losses work in progress."""

FUNCTIONAL = []
