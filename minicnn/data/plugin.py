"""Placeholder: registers the built-in datasets once the data work lands."""
