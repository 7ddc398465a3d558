"""The flat view of a model's graph, the CAM head, the default Grad-CAM node, gradients at a node
and the eval-mode guard."""

import minicnn
import numpy as np
import pytest
from minicnn import nn
from saliency_models import gap_linear, pool_linear, skip_model

from minicnn_saliency import (
    SaliencyError,
    default_layer,
    evaluating,
    feature_nodes,
    find_cam_head,
    gradient_at,
    trace,
)
from minicnn_saliency.graph import check_layer


def test_trace_names_nodes_as_the_executor_does():
    """A nested model (ResNet-20: Sequential stages of functional blocks): the flat graph gives
    the same scores, and its node names are those model.activation takes, with the same values."""
    minicnn.manual_seed(0)
    model = minicnn.zoo.resnet20(num_classes=5).eval()
    x = np.random.default_rng(0).random((2, 3, 8, 8)).astype(np.float32)
    want = model(x)
    graph = trace(model, x.shape[1:])
    np.testing.assert_allclose(graph.model(x), want, rtol=1e-5, atol=1e-6)
    names = [n.name for n in graph.nodes]
    assert names[:3] == ["conv1", "bn1", "relu"] and names[-3:] == ["avgpool", "flatten", "fc"]
    assert "layer2.0.downsample.0" in names and "layer3.2.relu_out" in names
    for name in ("layer1.0.conv2", "layer2.0.add", "layer3.2.relu_out"):
        np.testing.assert_array_equal(graph.model.activation(name), model.activation(name))
    assert graph.shapes["layer3.2.relu_out"] == (64, 2, 2) and graph.softmax is None


def test_trace_of_a_sequential_and_a_trailing_softmax():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Sequential(nn.Flatten(),
                                                                       nn.Linear(2 * 16, 3)),
                          nn.Softmax())
    graph = trace(model, (1, 6, 6))
    assert [n.name for n in graph.nodes] == ["0", "1", "2.0", "2.1"]
    assert graph.softmax == "3"                          # scores are the logits
    x = np.random.default_rng(1).random((2, 1, 6, 6)).astype(np.float32)
    probs = model(x)
    logits = graph.model(x)
    np.testing.assert_allclose(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), probs,
                               rtol=1e-5)


def test_trace_errors():
    with pytest.raises(SaliencyError, match="does not take inputs of shape"):
        trace(gap_linear(in_channels=2), (3, 8, 8))
    x = minicnn.Input((1, 4, 4))
    with pytest.raises(SaliencyError, match=r"output is \(N, classes\).*\(N, 2, 4, 4\)"):
        trace(minicnn.Model(x, nn.Conv2d(1, 2, 1)(x)), (1, 4, 4))
    with pytest.raises(SaliencyError, match="expected a minicnn model"):
        trace(np.zeros(3), (1, 4, 4))


def test_cam_head_of_gap_flatten_dropout_linear():
    model = gap_linear(dropout=True, softmax=True)
    head = find_cam_head(trace(model, (2, 5, 5)))
    assert (head.feature, head.pool, head.linear) == ("relu", "gap", "fc")
    np.testing.assert_array_equal(head.weight, model["fc"].weight.data)
    np.testing.assert_array_equal(head.bias, model["fc"].bias.data)


def test_cam_head_of_class_maps_and_global_average_pooling():
    """Network in Network ends in class maps and global average pooling: no Linear."""
    head = find_cam_head(trace(minicnn.zoo.nin(num_classes=4, in_channels=1), (1, 8, 8)))
    assert (head.feature, head.pool, head.linear, head.weight) == ("relu_cccp6", "pool3", None,
                                                                   None)


def test_cam_head_accepts_an_avgpool_over_the_whole_map_only():
    def model(kernel):
        x = minicnn.Input((1, 4, 4))
        h = nn.AvgPool2d(kernel)(nn.Conv2d(1, 2, 3, padding=1)(x, name="conv"), name="avg")
        return minicnn.Model(x, nn.Linear(2 * (4 // kernel) ** 2, 3)(nn.Flatten()(h), name="fc"))
    assert find_cam_head(trace(model(4), (1, 4, 4))).feature == "conv"
    with pytest.raises(SaliencyError, match="no global average pooling"):
        find_cam_head(trace(model(2), (1, 4, 4)))


def test_cam_head_errors_name_what_the_model_ends_with():
    with pytest.raises(SaliencyError, match=r"CAM needs a model ending in global average pooling"
                       r".*ends with .*MaxPool2d 'pool' -> Flatten 'flatten' -> Linear 'fc'.*"
                       r"gradcam"):
        find_cam_head(trace(pool_linear(), (2, 8, 8)))
    x = minicnn.Input((1, 4, 4))
    h = nn.Flatten()(nn.GlobalAvgPool2d()(nn.Conv2d(1, 2, 3)(x, name="conv"), name="gap"))
    out = nn.Linear(5, 3)(nn.ReLU()(nn.Linear(2, 5)(h, name="fc1"), name="act"), name="fc2")
    with pytest.raises(SaliencyError, match="ReLU 'act' sits between the pooling 'gap' and the "
                       "output"):
        find_cam_head(trace(minicnn.Model(x, out), (1, 4, 4)))
    y = nn.Flatten()(nn.GlobalAvgPool2d()(x, name="gap"), name="flat")
    with pytest.raises(SaliencyError, match="reads the model input directly"):
        find_cam_head(trace(minicnn.Model(x, nn.Linear(1, 2)(y)), (1, 4, 4)))


def test_default_layer_is_the_last_feature_map_before_the_head():
    assert default_layer(trace(gap_linear(), (2, 6, 6))) == "relu"      # not the 1x1 "gap"
    assert default_layer(trace(pool_linear(), (2, 8, 8))) == "pool"
    graph = trace(minicnn.zoo.resnet20(num_classes=3), (3, 8, 8))
    assert default_layer(graph) == "layer3.2.relu_out"
    assert feature_nodes(graph)[0] == "conv1"
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    with pytest.raises(SaliencyError, match="needs a node with a 4-D"):
        default_layer(trace(mlp, (1, 4, 4)))


def test_check_layer_errors():
    graph = trace(pool_linear(), (2, 8, 8))
    assert check_layer(graph, "t1") == "t1"
    with pytest.raises(SaliencyError, match=r"no node named 'nope'; nodes with 4-D outputs: "
                       r"c1, t1, A, relu, pool"):
        check_layer(graph, "nope")
    with pytest.raises(SaliencyError, match=r"node 'fc' \(Linear, output \(N, 3\)\) is not a "
                       r"feature map"):
        check_layer(graph, "fc")


def test_gradient_at_a_node_matches_the_analytic_gradient():
    """Tail ReLU -> Flatten -> Linear: d y_k / d A = W_k (reshaped) where A > 0."""
    minicnn.manual_seed(3)
    x = minicnn.Input((2, 5, 5))
    a = nn.Conv2d(2, 3, 3, padding=1)(x, name="A")
    out = nn.Linear(75, 4)(nn.Flatten()(nn.ReLU()(a, name="relu"), name="flat"), name="fc")
    model = minicnn.Model(x, out).double()
    batch = minicnn.testing.tie_free((2, 2, 5, 5), seed=1, dtype=np.float64)
    graph = trace(model, batch.shape[1:])
    with evaluating(model):
        value, grad, scores, classes = gradient_at(graph, batch, "A", [1, 3])
    np.testing.assert_array_equal(classes, [1, 3])
    np.testing.assert_allclose(scores, model(batch), rtol=1e-12)
    w = model["fc"].weight.data.reshape(4, 3, 5, 5)
    want = np.stack([w[k] * (value[n] > 0) for n, k in enumerate(classes)])
    np.testing.assert_allclose(grad, want, rtol=1e-12, atol=1e-14)


def _bias_fd(model, node, x, classes, h=1e-6):
    """d score / d bias of conv ``node`` by central differences on the whole model: the sum over
    the map of d score / d (that conv's output), since a bias shifts the whole map."""
    bias = model[node].bias.data
    out = np.zeros((len(x), bias.size))
    rows = np.arange(len(x))
    for c in range(bias.size):
        keep = bias[c]
        bias[c] = keep + h
        up = model(x)[rows, classes]
        bias[c] = keep - h
        down = model(x)[rows, classes]
        bias[c] = keep
        out[:, c] = (up - down) / (2 * h)
    return out


@pytest.mark.parametrize("build, node", [(pool_linear, "A"), (skip_model, "A"),
                                         (pool_linear, "c1")])
def test_gradient_at_a_node_matches_finite_differences(build, node):
    """Summed over the map, the gradient at a conv node is d score / d bias: central differences
    on the whole model, with a max pool in the tail, or a skip connection around the node (the
    head then takes the image too: the gradient is the partial one)."""
    model = build().double().eval()
    x = minicnn.testing.tie_free((2,) + model.inputs[0].shape, seed=2, dtype=np.float64)
    graph = trace(model, x.shape[1:])
    with evaluating(model):
        _, grad, _, classes = gradient_at(graph, x, node, [0, 1])
    np.testing.assert_allclose(grad.sum(axis=(2, 3)), _bias_fd(model, node, x, classes),
                               rtol=1e-6, atol=1e-8)


def test_evaluating_restores_modes_and_leaves_param_grads_alone():
    model = gap_linear(dropout=True).train()
    model["fc"].weight.requires_grad = False
    marker = np.full(model["conv"].weight.shape, 7.0, np.float32)
    model["conv"].weight.grad = marker
    x = np.random.default_rng(0).random((2, 2, 6, 6)).astype(np.float32)
    graph = trace(model, x.shape[1:])
    with evaluating(model):
        assert not model["drop"].training
        gradient_at(graph, x, "relu")
    assert model.training and model["drop"].training and model["conv"].training
    assert model["conv"].weight.requires_grad and not model["fc"].weight.requires_grad
    assert model["conv"].weight.grad is marker and np.all(marker == 7.0)


def test_traces_are_kept_until_the_module_tree_changes():
    minicnn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.GlobalAvgPool2d(),
                          nn.Flatten(), nn.Linear(2, 3))
    graph = trace(model, (1, 5, 5))
    assert trace(model, (1, 5, 5)) is graph and trace(model, (1, 6, 6)) is not graph
    model[-1] = nn.Linear(2, 4)                    # a new head: a new trace, with its weights
    head = find_cam_head(trace(model, (1, 5, 5)))
    assert head.weight.shape == (4, 2)
    np.testing.assert_array_equal(head.weight, model[-1].weight.data)
