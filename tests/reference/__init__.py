"""Slow, obviously-correct loop oracles, one module per layer family. They use plain Python loops
over float64 numpy arrays and share no code with the kernels they check."""
