"""Transfer learning end to end: pretrain, save, rebuild with a new head, load what matches,
freeze the features (frozen batch norm keeps its running statistics), fine-tune the head."""

from collections import OrderedDict

import numpy as np

import minicnn
from minicnn import data, nn, optim
from minicnn.io import load_matching
from minicnn.train import Trainer


def _net(num_classes, seed):
    minicnn.manual_seed(seed)
    return nn.Sequential(OrderedDict([
        ("features", nn.Sequential(nn.Conv2d(1, 6, 5, stride=2), nn.BatchNorm2d(6), nn.ReLU(),
                                   nn.MaxPool2d(2), nn.Flatten())),
        ("classifier", nn.Linear(6 * 6 * 6, num_classes)),
    ]))


def _fit(model, epochs=2, seed=0, num_classes=10):
    shapes = data.Shapes(512, seed=seed, num_classes=num_classes)
    loader = data.DataLoader(shapes, batch_size=64, shuffle=True, seed=seed)
    opt = optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05, momentum=0.9)
    return Trainer(model, nn.CrossEntropyLoss(), opt, progress=False).fit(loader, epochs=epochs)


def test_pretrain_swap_head_freeze_and_fine_tune(tmp_path):
    pretrained = _net(10, seed=0)
    _fit(pretrained)
    pretrained.save_weights(tmp_path / "pretrained.safetensors")

    model = _net(5, seed=1)                        # a new task with 5 classes
    report = load_matching(model, tmp_path / "pretrained.safetensors")
    assert {k for k, _, _ in report.mismatched} == {"classifier.weight", "classifier.bias"}
    assert "features.0.weight" in report.loaded and "features.1.running_mean" in report.loaded
    np.testing.assert_array_equal(model.features[0].weight.data,
                                  pretrained.features[0].weight.data)

    model.freeze("features")
    frozen_before = {k: v.copy() for k, v in model.state_dict().items() if k.startswith("features")}
    head_before = model.classifier.weight.data.copy()
    _fit(model, epochs=1, seed=2, num_classes=5)
    for key, value in model.state_dict().items():
        if key.startswith("features"):         # weights AND batch-norm statistics untouched
            np.testing.assert_array_equal(value, frozen_before[key], err_msg=key)
    assert model.features[0].weight.grad is None and model.features[1].weight.grad is None
    assert not np.array_equal(model.classifier.weight.data, head_before)

    # frozen batch norm normalises with its running statistics even in training mode
    x = data.DataLoader(data.Shapes(8, seed=3), batch_size=8).load_batch(np.arange(8))[0]
    train_out = model.train()(x)
    np.testing.assert_allclose(train_out, model.eval()(x), rtol=1e-6)

    model.unfreeze("features")                     # then fine-tune everything
    model.train()
    assert model.features[1].uses_batch_stats()
    _fit(model, epochs=1, seed=4, num_classes=5)
    assert not np.array_equal(model.features[0].weight.data, frozen_before["features.0.weight"])
