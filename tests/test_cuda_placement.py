"""Where a model runs (numba's CUDA simulator): a container built from modules on the GPU runs on
the GPU, as in PyTorch; a layer whose parameters are not where the model runs is named before any
kernel sees its arrays."""

import numpy as np
import pytest

from minicnn import ConfigError, Input, Model, nn, testing, to_numpy

from .cuda_sim import cuda_or_skip, small_launches  # noqa: F401 - the fixture is autouse

cuda_device = cuda_or_skip()


def test_containers_built_from_gpu_modules_run_on_the_gpu():
    conv = nn.Conv2d(1, 2, 3).to("cuda")
    head = nn.Sequential(nn.Flatten(), nn.Linear(18, 4)).to("cuda")
    x = Input((1, 5, 5))
    model = Model(x, head(nn.ReLU()(conv(x))))
    stacked = nn.Sequential(conv, nn.ReLU(), head)
    assert model.device == "cuda" and stacked.device == "cuda"
    data = testing.tie_free((2, 1, 5, 5), seed=0)
    y = model(data)
    assert cuda_device.is_device_array(y)                 # computed by the CUDA kernels
    np.testing.assert_array_equal(to_numpy(stacked(data)), to_numpy(y))
    cpu_model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    assert cpu_model.device == "cpu" and nn.Sequential(nn.ReLU()).device == "cpu"


def test_a_layer_left_on_another_device_is_named():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(18, 4))
    model.to("cuda")
    model[3] = nn.Linear(18, 5)                           # a new head, still on the CPU
    data = testing.tie_free((2, 1, 5, 5), seed=1)
    with pytest.raises(ConfigError, match=r"node '3' \(Linear\): its parameters or buffers are "
                                          r"on 'cpu' but the model runs on 'cuda'"):
        model(data)
    model.to("cuda")
    assert to_numpy(model(data)).shape == (2, 5)
    mixed = nn.Sequential(nn.Conv2d(1, 2, 3).to("cuda"), nn.Flatten(), nn.Linear(18, 4))
    assert mixed.device == "cpu"                          # mixed: stays, and says which is where
    with pytest.raises(ConfigError, match=r"node '0' \(Conv2d\).*on 'cuda' but the model runs "
                                          r"on 'cpu'"):
        mixed(data)
