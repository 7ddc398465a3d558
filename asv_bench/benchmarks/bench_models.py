"""Whole models from the zoo on the CPU: images per second, inference and training step.

``time_forward`` / ``track_forward_images_per_s`` run the model in eval mode (running batch norm
statistics); ``time_forward_backward`` / ``track_forward_backward_images_per_s`` run one training
step's forward and backward (batch statistics, parameter gradients, no input gradient).
"""

import copy

import minicnn
from minicnn import zoo

from ._util import data, rate

# name -> (constructor, batch, per-sample input shape, classes)
MODELS = {
    "lenet5": (zoo.lenet5, 64, (1, 28, 28), 10),
    "resnet20": (zoo.resnet20, 32, (3, 32, 32), 10),
}


class Models:
    params = (list(MODELS),)
    param_names = ["model"]
    timeout = 300

    def setup(self, model):
        factory, batch, shape, classes = MODELS[model]
        minicnn.manual_seed(0)
        self.batch = batch
        self.train = factory().train()
        self.infer = copy.deepcopy(self.train).eval()
        self.x = data((batch,) + shape)
        self.gy = data((batch, classes), seed=1)
        self.infer(self.x)                 # compile and allocate outside the timing
        self._step()

    def _step(self):
        self.train(self.x)
        self.train.backward(self.gy, input_grad=False)

    def time_forward(self, model):
        self.infer(self.x)

    def time_forward_backward(self, model):
        self._step()

    def track_forward_images_per_s(self, model):
        return rate(lambda: self.infer(self.x), self.batch)

    track_forward_images_per_s.unit = "images/s"

    def track_forward_backward_images_per_s(self, model):
        return rate(self._step, self.batch)

    track_forward_backward_images_per_s.unit = "images/s"
