"""Built-in layer families. Each family is a triple of files: ``x.py`` (the layer classes:
hyper-parameters and shape inference), ``x_cpu.py`` (Numba CPU kernels) and, for the GPU,
``x_cuda.py``; each file registers what it defines through the plugin hooks, exactly as a
third-party plugin would."""
