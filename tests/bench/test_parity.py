"""Parity metrics on arrays whose answers are known."""

import json
import math

import numpy as np
import pytest

from edgekit.parity import compare_outputs, compare_tensor, cosine, sqnr_db


def test_identical_tensors_have_infinite_sqnr_written_as_null():
    ref = np.array([[0.2, 0.8], [0.6, 0.4]], np.float32)

    parity = compare_tensor(ref, ref.copy(), is_class=True)
    data = parity.to_json()

    assert parity.sqnr_db == math.inf
    assert parity.identical
    assert data["sqnr_db"] is None and data["identical"] is True
    assert data["max_abs"] == 0.0 and data["cosine"] == pytest.approx(1.0)
    assert data["agreement"] == 100.0 and data["flipped"] == 0
    json.dumps(data, allow_nan=False)


def test_known_error_gives_known_metrics():
    ref = np.array([3.0, 4.0])
    out = np.array([3.0, 3.0])

    parity = compare_tensor(ref, out)

    assert parity.max_abs == 1.0
    assert parity.mean_abs == 0.5
    assert parity.rmse == pytest.approx(math.sqrt(0.5))
    # signal 25, noise 1: 10*log10(25)
    assert parity.sqnr_db == pytest.approx(10 * math.log10(25))
    assert parity.cosine == pytest.approx(21 / (5 * math.sqrt(18)))
    assert parity.agreement is None


def test_flipped_verdicts_are_counted():
    ref = np.array([[0.9, 0.1], [0.4, 0.6], [0.51, 0.49], [0.2, 0.8]])
    out = np.array([[0.8, 0.2], [0.6, 0.4], [0.49, 0.51], [0.1, 0.9]])

    parity = compare_tensor(ref, out, is_class=True)

    assert parity.flipped == 2
    assert parity.agreement == 50.0


def test_nan_and_inf_are_counted_and_never_become_json_nan():
    ref = np.array([[0.5, 0.5], [0.3, 0.7]])
    out = np.array([[np.nan, 0.5], [np.inf, 0.7]])

    parity = compare_tensor(ref, out, is_class=True)
    data = parity.to_json()

    assert parity.nonfinite == 2
    assert parity.flipped == 2
    json.dumps(data, allow_nan=False)


def test_cosine_of_zero_vectors():
    zeros = np.zeros(4)

    assert cosine(zeros, zeros) == 1.0
    assert cosine(zeros, np.ones(4)) == 0.0


def test_sqnr_of_zero_signal_is_minus_infinity():
    assert sqnr_db(np.zeros(3), np.ones(3)) == -math.inf


def test_compare_outputs_marks_only_the_class_output():
    ref = {"verdict": np.eye(2), "features": np.ones((2, 3))}

    parity = compare_outputs(ref, dict(ref), "verdict")

    assert parity["verdict"].agreement == 100.0
    assert parity["features"].agreement is None


def test_shape_mismatch_is_a_bug_not_a_metric():
    with pytest.raises(ValueError, match="shapes differ"):
        compare_tensor(np.zeros((2, 2)), np.zeros((2, 3)))
