"""The public API fixed by the foundation issue, exercised as a user would write it."""

import numpy as np
import pytest

import minicnn
from minicnn import functional as F
from minicnn import nn


def test_the_documented_api():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    conv = nn.Conv2d(3, 4, 3, stride=1, padding=0, dilation=1, groups=1, bias=True)
    assert conv.weight.data.shape == (4, 3, 3, 3) and conv.bias.data.shape == (4,)
    assert conv.weight.grad is None
    y = conv(x)
    gx = conv.backward(np.ones_like(y))
    assert y.shape == (2, 4, 6, 6) and gx.shape == x.shape
    np.testing.assert_allclose(conv.bias.grad, np.full(4, 2 * 6 * 6), rtol=1e-6)

    np.testing.assert_allclose(F.conv2d(x, conv.weight.data, b=conv.bias.data), y, rtol=1e-5)
    np.testing.assert_allclose(F.conv2d(x, conv.weight.data, conv.bias.data, 1, 0, 1, 1), y,
                               rtol=1e-5)
    np.testing.assert_allclose(F.conv2d(x, conv.weight.data, bias=conv.bias.data), y, rtol=1e-5)
    with pytest.raises(TypeError, match="once"):
        F.conv2d(x, conv.weight.data, conv.bias.data, bias=conv.bias.data)

    model = nn.Sequential(nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(2880, 10))
    assert len(model.parameters()) == 4
    state = model.state_dict()
    assert list(state) == ["0.weight", "0.bias", "4.weight", "4.bias"]
    model.load_state_dict(state)
    model.train()
    model.eval()
    assert "parameters: 29,330" in str(model.summary())
    logits = model(rng.standard_normal((4, 1, 28, 28)).astype(np.float32))
    loss = nn.CrossEntropyLoss()
    value = loss(logits, np.array([1, 2, 3, 4]))
    assert isinstance(value, float) and value > 0
    glogits = loss.backward()
    assert glogits.shape == (4, 10)
    np.testing.assert_allclose(glogits.sum(axis=1), 0, atol=1e-6)

    xi = minicnn.Input((4, 6, 6))
    h = nn.ReLU()(nn.Conv2d(4, 4, 3, padding=1)(xi))
    out = nn.Add()([h, xi])
    residual = minicnn.Model(xi, out)
    batch = rng.standard_normal((2, 4, 6, 6)).astype(np.float32)
    assert residual(batch).shape == (2, 4, 6, 6)
    assert residual.backward(np.ones((2, 4, 6, 6), np.float32)).shape == (2, 4, 6, 6)
    assert nn.Concat(dim=1)([batch, batch]).shape == (2, 8, 6, 6)
    assert minicnn.to_numpy(batch) is batch
