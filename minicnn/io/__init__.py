"""Model files: safe to load, atomic to write.

Every file is a safetensors file (tensors plus string metadata), written through a temporary file
and ``os.replace`` (:mod:`minicnn.io.atomic`), and read with every size checked before anything is
allocated (:mod:`minicnn.io.tensorfile`). Nothing in a file is ever executed: no pickle, no eval, no
import of a name found in a file; layers are built through the plugin registry by type name.

* ``model.mcnn`` (:func:`save` / :func:`load`): the architecture JSON in the metadata and the
  state dict as tensors: everything needed to rebuild the model; ``save(model, path,
  metadata={...})`` adds a dict of your own (plain JSON data), read back by
  :func:`read_metadata` without building the model;
* ``weights.safetensors`` (:func:`save_weights` / :func:`load_weights`): the state dict alone,
  PyTorch-style dotted names;
* ``ckpt.safetensors`` (:func:`save_checkpoint` / :func:`load_checkpoint`): the state dict, the
  optimizer and scheduler states, the random states, epoch, step and extra values.

(``.mcnn`` is a convention: it is a safetensors file, so any safetensors tool can list its tensors.)
A malformed, truncated or hostile file is always one :class:`minicnn.ModelFormatError` naming the
file and what is wrong. :func:`import_keras_tfjs` reads Keras / TensorFlow.js layers models;
:mod:`.transfer` has the transfer-learning helpers.
"""

from .checkpoint import load_checkpoint, save_checkpoint
from .keras_tfjs import import_keras_tfjs
from .transfer import TransferReport, load_matching
from .weights import LoadReport, load, load_weights, read_metadata, save, save_weights

__all__ = ["LoadReport", "TransferReport", "import_keras_tfjs", "load", "load_checkpoint",
           "load_matching", "load_weights", "read_metadata", "save", "save_checkpoint",
           "save_weights"]
