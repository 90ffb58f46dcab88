"""The trace every converter starts from: one frozen graph, named tensors."""

from .conftest import build_tiny_model


def test_the_direct_freeze_gives_tensorflow_s_public_one():
    from edgekit.export.common import _freeze, _public_freeze, trace_model

    traced = trace_model(build_tiny_model())
    concrete = traced.function.get_concrete_function()

    direct = _freeze(concrete)
    public = _public_freeze(concrete)

    assert direct[1:] == public[1:]
    assert direct[1] == traced.graph_inputs == ["image:0"]
    serialized = [
        graph.SerializeToString(deterministic=True) for graph, *_ in (direct, public)
    ]
    assert serialized[0] == serialized[1]
    assert set(traced.tensor_names.values()) == {"image", "verdict", "features"}
