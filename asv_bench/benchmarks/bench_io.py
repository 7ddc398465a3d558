"""Model files: save and load time of a ~10M-parameter model (41 MB of float32), and throughput.

Saves are atomic (temporary file, fsync, rename, directory fsync), so they include the fsyncs;
loads check the header and verify the sha256 digest of every tensor.
"""

import os
import shutil
import tempfile

import minicnn
from minicnn import io as mio
from minicnn import nn

from ._util import best_seconds


def _model():
    minicnn.manual_seed(0)
    return minicnn.Sequential(nn.Linear(2048, 2048), nn.ReLU(), nn.Linear(2048, 2048), nn.ReLU(),
                              nn.Linear(2048, 1024))   # 10.5M parameters


class ModelFiles:
    def setup(self):
        self.dir = tempfile.mkdtemp(prefix="minicnn-bench-io-")
        self.model = _model()
        self.nbytes = sum(p.data.nbytes for p in self.model.parameters())
        self.model_path = os.path.join(self.dir, "model.mcnn")
        self.weights_path = os.path.join(self.dir, "weights.safetensors")
        self.ckpt_path = os.path.join(self.dir, "ckpt.safetensors")
        mio.save(self.model, self.model_path)
        mio.save_weights(self.model, self.weights_path)
        mio.save_checkpoint(self.ckpt_path, self.model, epoch=1)
        self.target = _model()

    def teardown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def time_save(self):
        mio.save(self.model, self.model_path)

    def time_load(self):
        mio.load(self.model_path)

    def time_save_weights(self):
        mio.save_weights(self.model, self.weights_path)

    def time_load_weights(self):
        mio.load_weights(self.target, self.weights_path)

    def time_save_checkpoint(self):
        mio.save_checkpoint(self.ckpt_path, self.model, epoch=1)

    def time_load_checkpoint(self):
        mio.load_checkpoint(self.ckpt_path, self.target)

    def track_save_mb_per_s(self):
        return self.nbytes / best_seconds(lambda: mio.save(self.model, self.model_path)) / 1e6

    track_save_mb_per_s.unit = "MB/s"

    def track_load_mb_per_s(self):
        return self.nbytes / best_seconds(lambda: mio.load(self.model_path)) / 1e6

    track_load_mb_per_s.unit = "MB/s"
