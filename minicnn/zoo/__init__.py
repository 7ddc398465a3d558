"""Model zoo (placeholder: filled in by the zoo work in progress)."""
