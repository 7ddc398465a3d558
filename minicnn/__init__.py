"""minicnn: a convolutional neural network framework you can read, extend and trust.

Numba CPU kernels behind one graph executor (a numba.cuda GPU backend plugs into the same kernel
table); layers, losses, models and commands come from pluggy plugins, built-in ones included.
"""

from . import data, functional, io, nn, optim, testing, zoo
from .command import Command
from .data.errors import DataFormatError, DatasetNotFoundError
from .device import to_numpy
from .errors import (
    ConfigError,
    InputError,
    KernelMissingError,
    MinicnnError,
    ModelFormatError,
    NonFiniteError,
    PluginError,
    ShapeError,
)
from .graph import Model, Sequential
from .io import load, read_metadata, save
from .jit import cpu_threads
from .kernel import Kernel
from .layer import Layer, Loss, Module, Param
from .random import manual_seed
from .registry import get_registry, hookimpl
from .symbolic import Input

__version__ = "0.1.0"

__all__ = [
    "Command", "ConfigError", "DataFormatError", "DatasetNotFoundError", "Input", "InputError",
    "Kernel", "KernelMissingError", "Layer", "Loss", "MinicnnError", "Model", "ModelFormatError",
    "Module", "NonFiniteError", "Param", "PluginError", "Sequential", "ShapeError", "cpu_threads",
    "data", "functional", "get_registry", "hookimpl", "io", "load", "manual_seed", "nn", "optim",
    "read_metadata", "save", "testing", "to_numpy", "zoo",
]
