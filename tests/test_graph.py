"""The graph and its executor: DAGs, fan-out, taps, input gradients, frozen parts, names, errors."""

import copy
from collections import OrderedDict

import numpy as np
import pytest

import minicnn
from minicnn import Input, InputError, Model, ShapeError, nn, testing


def _residual_mlp():
    x = Input((4,))
    h = nn.Tanh()(nn.Linear(4, 4)(x, name="fc1"), name="act1")
    skip = nn.Add()([h, x], name="skip")              # x feeds two nodes: fan-out
    out1 = nn.Linear(4, 3)(skip, name="head")
    out2 = nn.Sigmoid()(h, name="aux")                 # h feeds two nodes too
    return Model(x, [out1, out2])


def test_functional_dag_matches_a_hand_computation():
    minicnn.manual_seed(0)
    model = _residual_mlp()
    x = testing.tie_free((3, 4), seed=1)
    out1, out2 = model(x)
    w1, b1 = model["fc1"].weight.data, model["fc1"].bias.data
    w2, b2 = model["head"].weight.data, model["head"].bias.data
    h = np.tanh(x @ w1.T + b1)
    np.testing.assert_allclose(out1, (h + x) @ w2.T + b2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out2, 1 / (1 + np.exp(-h)), rtol=1e-5)


def test_fan_out_gradients_accumulate():
    testing.gradcheck(_residual_mlp(), [testing.tie_free((3, 4), seed=2)])


def test_constant_output_gradients_are_what_each_backward_was_given():
    """A float output gradient (a loss's 1.0) is filled once and kept while it is unchanged;
    other constants, None (zeros) and arrays in between must still be what each call sees."""
    model = _residual_mlp().astype(np.float64)
    model(testing.tie_free((3, 4), seed=9).astype(np.float64))
    steps = [(1.0, 1.0), (1.0, 1.0), (2.0, 1.0), (None, 1.0), (2.0, None), (2.0, 1.0),
             (2.0, "float32"), (2.0, 1.0), (1.0, 1.0)]
    for g1, g2 in steps:
        if g2 == "float32":     # another dtype: copied into the buffer the constant was in
            got = model.backward([g1, np.full((3, 4), 3.0, np.float32)])
            g2 = 3.0
        else:
            got = model.backward([g1, g2])
        want = model.backward([np.full((3, 3), g1 or 0.0), np.full((3, 4), g2 or 0.0)])
        np.testing.assert_array_equal(got, want)


def test_passed_on_gradients_that_meet_a_second_consumer_are_summed_aside():
    """Add and Flatten hand their output gradient on (Kernel.passes_gradient); h below gets one
    from Add twice and one from the conv, so its sum must go to a buffer of its own."""
    x = Input((2, 3, 3))
    h = nn.ReLU()(x)
    s = nn.Add()([h, nn.Conv2d(2, 2, 1)(h)])
    model = Model(x, nn.Linear(18, 2)(nn.Flatten()(nn.Add()([s, h]))))
    testing.gradcheck(model, [testing.tie_free((2, 2, 3, 3), seed=5)])


def test_same_value_twice_into_one_node():
    x = Input((3,))
    model = Model(x, nn.Add()([x, x, x]))
    model(np.ones((2, 3), np.float32))
    np.testing.assert_array_equal(model.backward(np.ones((2, 3), np.float32)), 3 * np.ones((2, 3)))


def test_shared_layer_accumulates_weight_gradient():
    shared = nn.Linear(3, 3)
    x = Input((3,))
    model = Model(x, shared(nn.Tanh()(shared(x))))
    assert [n for n, _ in model.named_parameters()] == ["linear_1.weight", "linear_1.bias"]
    testing.gradcheck(model, [testing.tie_free((2, 3), seed=3)])


def test_taps_and_sub_models_share_layers():
    model = _residual_mlp()
    x = testing.tie_free((2, 4), seed=4)
    model(x)
    tap = model.activation("act1")
    fc1 = model["fc1"]
    np.testing.assert_allclose(tap, np.tanh(x @ fc1.weight.data.T + fc1.bias.data), rtol=1e-5)
    features = Model(model.inputs, model.node("act1"))
    np.testing.assert_array_equal(features(x), tap)
    with pytest.raises(KeyError, match="no node named 'nope'"):
        model.activation("nope")


def test_gradient_at_a_node_is_the_chain_rule_up_to_it():
    minicnn.manual_seed(6)
    model = _residual_mlp()
    x = testing.tie_free((3, 4), seed=6).astype(np.float64)
    model = model.astype(np.float64)
    model(x)
    g1, g2 = testing.tie_free((3, 3), seed=7), testing.tie_free((3, 4), seed=8)
    model.backward([g1, g2])
    w1, b1 = model["fc1"].weight.data, model["fc1"].bias.data
    w2 = model["head"].weight.data
    h = np.tanh(x @ w1.T + b1)
    s = 1 / (1 + np.exp(-h))
    g_skip = g1 @ w2                                     # head's input
    g_h = g_skip + g2 * s * (1 - s)                      # fan-out: skip and aux add up
    np.testing.assert_allclose(model.gradient("skip"), g_skip, rtol=1e-10)
    np.testing.assert_allclose(model.gradient("act1"), g_h, rtol=1e-10)
    np.testing.assert_allclose(model.gradient("fc1"), g_h * (1 - h * h), rtol=1e-10)
    np.testing.assert_allclose(model.gradient("head"), g1)   # an output: what was passed in
    with pytest.raises(KeyError, match="no node named 'nope'"):
        model.gradient("nope")


def test_gradient_at_a_node_needs_a_backward_that_reached_it():
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    x = testing.tie_free((3, 4), seed=9)
    model(x)
    with pytest.raises(RuntimeError, match="no backward pass"):
        model.gradient("1")
    model.freeze()
    model.backward(np.ones((3, 2), np.float32), input_grad=False)
    with pytest.raises(RuntimeError, match=r"node '1' \(ReLU\) got no gradient.*input_grad=True"):
        model.gradient("1")
    model.backward(np.ones((3, 2), np.float32), input_grad=True)    # frozen: still reaches it
    np.testing.assert_allclose(model.gradient("1"), np.ones((3, 2)) @ model[2].weight.data,
                               rtol=1e-6)


def test_input_gradient_and_frozen_subgraph():
    minicnn.manual_seed(5)
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    model.freeze("0")
    x = testing.tie_free((3, 4), seed=5)
    model(x)
    gx = model.backward(np.ones((3, 2), np.float32))
    assert model[0].weight.grad is None and model[0].bias.grad is None
    assert model[2].weight.grad is not None
    # the input gradient is still exact through the frozen layer
    reference = copy.deepcopy(model).unfreeze()
    reference(x)
    np.testing.assert_allclose(gx, reference.backward(np.ones((3, 2), np.float32)), rtol=1e-6)


def test_backward_without_input_gradient_skips_frozen_layers_entirely():
    calls = []
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    model.freeze("0")
    model(testing.tie_free((3, 4), seed=6))
    kernel = minicnn.get_registry().kernel("Linear", "cpu")
    original = kernel.backward
    kernel.backward = lambda layer, *a: (calls.append(layer), original(layer, *a))
    try:
        assert model.backward(np.ones((3, 2), np.float32), input_grad=False) is None
    finally:
        del kernel.backward
    assert calls == [model[2]]     # nothing upstream of the frozen layer ran backward


def test_freezing_between_passes_takes_effect_at_the_next_backward():
    """Which values need gradients is worked out once per freeze/unfreeze, not every pass: a
    change between two passes of the same plan must still be seen, both ways."""
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    reference = copy.deepcopy(model)
    x, gy = testing.tie_free((3, 4), seed=7), np.ones((3, 2), np.float32)
    reference(x)
    reference.backward(gy, input_grad=False)
    model.freeze("0")
    model(x)
    model.backward(gy, input_grad=False)       # layer 0 needs no backward at all now
    assert model[0].weight.grad is None and model[0].bias.grad is None
    model[0].weight.requires_grad = True          # one parameter back
    model(x)
    model.backward(gy, input_grad=False)
    np.testing.assert_array_equal(model[0].weight.grad, reference[0].weight.grad)
    assert model[0].bias.grad is None
    model.freeze("0")
    model[0].weight.grad = None
    model(x)
    model.backward(gy, input_grad=False)
    assert model[0].weight.grad is None


def test_state_dict_names_follow_pytorch():
    model = nn.Sequential(OrderedDict([
        ("features", nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 3))),
        ("classifier", nn.Linear(3, 1)),
    ]))
    assert list(model.state_dict()) == ["features.0.weight", "features.0.bias", "features.2.weight",
                                        "features.2.bias", "classifier.weight", "classifier.bias"]
    other = copy.deepcopy(model)
    for p in other.parameters():
        p.data[...] = 0
    other.load_state_dict(model.state_dict())
    x = testing.tie_free((2, 2), seed=7)
    np.testing.assert_array_equal(other(x), model(x))
    missing, unexpected = other.load_state_dict({"classifier.weight": np.ones((1, 3))},
                                                strict=False)
    assert "classifier.bias" in missing and unexpected == []
    with pytest.raises(KeyError, match="missing keys"):
        other.load_state_dict({"classifier.weight": np.ones((1, 3))})
    with pytest.raises(ValueError, match=r"'classifier.weight' has shape \(2, 3\)"):
        other.load_state_dict({**model.state_dict(), "classifier.weight": np.ones((2, 3))})


def test_nested_containers_run_and_name_their_nodes():
    block = nn.Sequential(nn.Linear(3, 3), nn.Tanh())
    x = Input((3,))
    model = Model(x, nn.Linear(3, 2)(block(x, name="block"), name="head"))
    y = model(testing.tie_free((2, 3), seed=8))
    assert y.shape == (2, 2)
    assert list(model.state_dict())[:2] == ["block.0.weight", "block.0.bias"]
    assert model.activation("block.1").shape == (2, 3)
    testing.gradcheck(model, [testing.tie_free((2, 3), seed=9)])


def test_shape_errors_name_the_node():
    x = Input((4,))
    with pytest.raises(ShapeError, match=r"node 'oops' \(Linear\).*expected \(N, \*, 5\)"):
        nn.Linear(5, 2)(x, name="oops")
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(4, 2))
    with pytest.raises(ShapeError, match=r"node '1' \(Linear\).*received \(2, 3\)"):
        model(np.zeros((2, 4), np.float32))


def test_head_swap_rebuilds_the_plan():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 10))
    x = testing.tie_free((2, 4), seed=10)
    assert model(x).shape == (2, 10)
    model[-1] = nn.Linear(3, 5)
    assert model(x).shape == (2, 5)


def test_outputs_are_not_overwritten_by_the_next_call():
    model = nn.Sequential(nn.Linear(2, 2))
    y1 = model(np.ones((1, 2), np.float32))
    keep = y1.copy()
    model(np.zeros((1, 2), np.float32))
    np.testing.assert_array_equal(y1, keep)


def test_multiple_inputs_and_wrong_counts():
    a, b = Input((2,)), Input((2,))
    model = Model([a, b], nn.Concat()([a, nn.Tanh()(b)]))
    xa, xb = testing.tie_free((3, 2), seed=11), testing.tie_free((3, 2), seed=12)
    np.testing.assert_allclose(model([xa, xb]), np.concatenate([xa, np.tanh(xb)], 1), rtol=1e-6)
    ga, gb = model.backward(np.ones((3, 4), np.float32))
    np.testing.assert_array_equal(ga, np.ones((3, 2)))
    np.testing.assert_allclose(gb, 1 - np.tanh(xb) ** 2, rtol=1e-5)
    with pytest.raises(InputError, match="expected 2 input"):
        model(xa)
    with pytest.raises(ShapeError, match="gradient 0 has the wrong shape"):
        model.backward(np.ones((3, 5), np.float32))


def test_model_input_must_be_given():
    a, b = Input((2,)), Input((2,))
    with pytest.raises(ValueError, match="not among the model's inputs"):
        Model(a, nn.Add()([a, b]))


def test_buffers_are_reused_between_calls():
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8))
    x = testing.tie_free((4, 8), seed=13)
    model(x)
    model.backward(np.ones((4, 8), np.float32))
    plan = model._get_executor()._last
    ids = {v: id(b) for v, b in plan.buffers.items()}
    grads = {v: id(b) for v, b in plan.grad_buffers.items()}
    for _ in range(3):
        model(x)
        model.backward(np.ones((4, 8), np.float32))
    assert ids == {v: id(b) for v, b in model._get_executor()._last.buffers.items()}
    assert grads == {v: id(b) for v, b in model._get_executor()._last.grad_buffers.items()}


def test_summary_lists_nodes_params_and_frozen():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    model.freeze("2")
    text = str(model.summary((4,)))
    assert "Linear" in text and "(1, 3)" in text
    assert "parameters: 23 (trainable 15, frozen 8)" in text
    early = str(nn.Sequential(nn.Linear(4, 3), nn.ReLU()).summary())   # never called yet
    assert "give input_shape" in early and "parameters: 15" in early


def test_float64_models_run_in_float64():
    model = nn.Sequential(nn.Linear(3, 2)).double()
    assert model(np.ones((1, 3))).dtype == np.float64


def test_free_axes_in_inputs_are_checked_when_data_comes():
    x = Input((3, None))
    h = nn.Tanh()(x)
    assert h.shape == (3, None)
    flat = nn.Flatten()(h)
    assert flat.shape == (None,)
    out = nn.Linear(12, 2)(flat, name="fc")     # cannot be checked before data comes
    assert out.shape is None
    model = Model(x, out)
    assert model(testing.tie_free((2, 3, 4), seed=14)).shape == (2, 2)
    with pytest.raises(ShapeError, match=r"node 'fc' \(Linear\).*received \(2, 15\)"):
        model(testing.tie_free((2, 3, 5), seed=15))


def test_freeze_prefix_matches_whole_name_parts():
    model = nn.Sequential(OrderedDict([(f"fc{i}", nn.Linear(2, 2)) for i in (1, 10)]))
    model.freeze("fc1")
    assert [n for n, p in model.named_parameters() if not p.requires_grad] == ["fc1.weight",
                                                                              "fc1.bias"]
    model.unfreeze()
    model.freeze("fc1.weight")
    assert [n for n, p in model.named_parameters() if not p.requires_grad] == ["fc1.weight"]
    with pytest.raises(KeyError, match="no parameter name starts with"):
        model.freeze("fc")


@pytest.mark.parametrize("flag", ["passes_gradient", "output_is_view"])
def test_a_kernel_shortcut_that_would_skip_real_work_is_refused(flag):
    """Kernel.passes_gradient skips backward and Kernel.output_is_view skips forward: declared on
    a layer with parameters, they would silently drop its gradients, so planning refuses them."""
    from minicnn.kernel import Kernel
    from minicnn.registry import Registry, hookimpl, set_registry

    class Scale(minicnn.Layer):
        def __init__(self):
            super().__init__()
            self.add_param("weight", np.ones(1, np.float32))

        def infer_shapes(self, in_shapes):
            return [in_shapes[0]]

    class ScaleCPU(Kernel):
        layer, device = "Scale", "cpu"

        def forward(self, layer, xs, ys, ws):
            ys[0][...] = xs[0] * layer.weight.data[0]

    setattr(ScaleCPU, flag, True)

    class Plugin:
        @hookimpl
        def minicnn_layers(self):
            return [Scale]

        @hookimpl
        def minicnn_kernels(self):
            return [ScaleCPU]

    registry = Registry(load_entry_points=False)
    registry.register(Plugin(), name="scale")
    previous = set_registry(registry)
    try:
        x = Input((3,))
        model = Model(x, nn.Tanh()(Scale()(x, name="scaled")))
        with pytest.raises(minicnn.PluginError, match=rf"node 'scaled'.*declares {flag}.*weight"
                           if flag == "passes_gradient" else rf"node 'scaled'.*{flag}.*1 param"):
            model(np.ones((2, 3), np.float32))
    finally:
        set_registry(previous)


def test_a_param_assigned_as_an_attribute_is_declared_and_trains():
    """``self.scale = Param(...)``, as PyTorch users write ``nn.Parameter``, registers it like
    add_param; an array assigned over a parameter is refused (it would never train)."""
    class Scaled(minicnn.Layer):
        type_name = "ScaledLinearForAttrTest"

        def __init__(self):
            super().__init__()
            self.inner = None
            self.scale = minicnn.Param(np.full(1, 2.0, np.float32))

        def infer_shapes(self, in_shapes):
            return [in_shapes[0]]

    layer = Scaled()
    assert [name for name, _ in layer.named_parameters()] == ["scale"]
    assert layer.state_dict()["scale"] == 2.0
    with pytest.raises(TypeError, match=r"ScaledLinearForAttrTest.scale is a parameter: assign a "
                                        r"Param, or the array to scale.data"):
        layer.scale = np.ones(1, np.float32)
    linear = nn.Linear(2, 2)
    old = linear.weight
    linear.weight = minicnn.Param(np.zeros((2, 2), np.float32))
    assert linear.weight is not old and dict(linear.named_parameters())["weight"] is linear.weight
    np.testing.assert_array_equal(linear(np.ones((1, 2), np.float32)), linear.bias.data[None])


def test_a_graph_deeper_than_pythons_recursion_limit():
    import sys
    depth = sys.getrecursionlimit() + 500
    x = Input((3,))
    h = x
    for _ in range(depth):
        h = nn.Tanh()(h)
    model = Model(x, [h, nn.Sigmoid()(x)])
    assert len(model.nodes) == depth + 1 and model.nodes[0].inputs == [x]
    a = np.full((2, 3), 0.5, np.float32)
    y, _ = model(a)
    expected = a.astype(np.float64)
    for _ in range(depth):
        expected = np.tanh(expected)
    np.testing.assert_allclose(y, expected, rtol=1e-4)
    assert model.backward([np.ones_like(y), np.zeros((2, 3), np.float32)]).shape == (2, 3)
    twin = copy.deepcopy(model)                 # copy's recursion must not follow the chain
    assert len(twin.nodes) == depth + 1 and twin.nodes[0] is not model.nodes[0]
    np.testing.assert_array_equal(twin(a)[0], y)


def test_deepcopy_keeps_shared_layers_shared_and_apart_from_the_original():
    x = Input((3,))
    shared = nn.Linear(3, 3)
    model = Model(x, shared(nn.Tanh()(shared(x))))
    twin = copy.deepcopy(model)
    first, second = (node.module for node in twin.nodes if node.module.type_name == "Linear")
    assert first is second and first is not shared
    first.weight.data[...] = 0
    assert np.abs(shared.weight.data).sum() > 0
    np.testing.assert_array_equal(twin(np.ones((2, 3), np.float32)), np.broadcast_to(
        first.bias.data, (2, 3)))
