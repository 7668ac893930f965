"""The export parity gate, format by format: a row inside every bound passes, a row outside any one fails.

Numpy only: a fake runner returns chosen probabilities and class ids, and ``evaluate_format`` (the gate the
exporter calls before installing a format) must set ``ok`` and name the violated bound.
"""

import numpy as np
import pytest

from daaa_tf.serving.parity import FORMATS, check_bounds, default_bounds, evaluate_format, format_table

N, K = 200, 10
LABELS = np.arange(N) % K
REF_TOP1 = np.where(np.arange(N) < 160, LABELS, (LABELS + 1) % K)  # the reference is right on 80 %
REFERENCE = np.full((N, K), 0.5 / (K - 1), np.float32)
REFERENCE[np.arange(N), REF_TOP1] = 0.5


def runner_for(delta=0.0, flip_right=0, flip_wrong=0, fix_wrong=0):
    """Probabilities off by ``delta`` (max |dp|); class ids that differ from the reference's top-1 on
    ``flip_right`` of its correct samples (accuracy drops), ``flip_wrong`` of its wrong ones (accuracy kept)
    and ``fix_wrong`` wrong ones set to the label (accuracy rises)."""
    probs = REFERENCE.copy()
    probs[:, 1] += delta
    probs[:, 2] -= delta
    ids = REF_TOP1.copy()
    ids[:flip_right] = (LABELS[:flip_right] + 3) % K
    ids[160:160 + flip_wrong] = (LABELS[160:160 + flip_wrong] + 5) % K
    ids[180:180 + fix_wrong] = LABELS[180:180 + fix_wrong]

    def run(images):
        idx = images[:, 0, 0, 0].astype(int)
        return probs[idx], ids[idx]

    return run


IMAGES = np.zeros((N, 2, 2, 3), np.uint8)
IMAGES[:, 0, 0, 0] = np.arange(N)  # the fake runner reads the sample index here


def gate(fmt, **kw):
    return evaluate_format(runner_for(**kw), IMAGES, LABELS, REFERENCE, default_bounds()[fmt], batch_size=64)


# (format, runner settings, expected violation or None). Every bound of every format has a failing row.
CASES = [
    ("saved_model", dict(), None),
    ("saved_model", dict(delta=5e-6), None),
    ("saved_model", dict(delta=3e-5), "max |delta|"),
    ("float", dict(delta=5e-5), None),
    ("float", dict(delta=3e-4), "max |delta|"),
    ("dynamic", dict(delta=0.04, flip_wrong=2), None),             # 0.99 agreement, no drop
    ("dynamic", dict(delta=0.3), None),                             # max |dp| alone is information only
    ("dynamic", dict(delta=0.01, flip_wrong=6), "top-1 agreement"),  # 0.97 < 0.98
    ("dynamic", dict(flip_right=3), "accuracy drop"),               # 0.985 agreement, 1.5 points drop
    ("int8", dict(delta=0.3, flip_right=2, flip_wrong=8), None),    # 0.95 agreement, 1 point drop
    ("int8", dict(flip_wrong=16), "top-1 agreement"),               # 0.92 < 0.93, no drop
    ("int8", dict(flip_right=6), "accuracy drop"),                  # 0.97 agreement, 3 points drop
    ("int8", dict(fix_wrong=6), None),                              # 3 points *better*: not a drop
]


@pytest.mark.parametrize("fmt, settings, violation", CASES)
def test_each_format_bound_is_a_gate(fmt, settings, violation):
    row = gate(fmt, **settings)
    if violation is None:
        assert row["ok"] and row["violations"] == [], row
    else:
        assert not row["ok"]
        assert any(v.startswith(violation) for v in row["violations"]), row["violations"]


def test_measured_rows():
    row = gate("int8", flip_right=6)
    assert row["top1_agreement"] == pytest.approx(0.97) and row["accuracy_drop"] == pytest.approx(3.0)
    assert row["accuracy"] == pytest.approx(77.0)
    row = gate("int8", fix_wrong=6)
    assert row["accuracy_drop"] == pytest.approx(-3.0)
    assert gate("dynamic", delta=0.06)["max_abs_delta"] == pytest.approx(0.06, rel=1e-5)


def test_default_bounds_cover_every_format_with_the_documented_values():
    bounds = default_bounds()
    assert set(bounds) == set(FORMATS)
    assert bounds == {"saved_model": {"max_abs_delta": 1e-5}, "float": {"max_abs_delta": 1e-4},
                      "dynamic": {"min_top1_agreement": 0.98, "max_accuracy_drop": 1.0},
                      "int8": {"min_top1_agreement": 0.93, "max_accuracy_drop": 2.0}}


def test_non_finite_and_nan_delta_fail_every_format():
    row = {"finite": False, "max_abs_delta": float("nan"), "top1_agreement": 1.0, "accuracy_drop": 0.0}
    for fmt, bounds in default_bounds().items():
        assert check_bounds(row, bounds), fmt


def test_the_table_shows_failures():
    rows = {"saved_model": gate("saved_model"), "int8": gate("int8", flip_right=6)}
    table = format_table({"reference": {"model": "m.keras", "accuracy": 80.0, "num_examples": N}, "formats": rows})
    lines = table.splitlines()
    assert lines[2].startswith("saved_model") and lines[2].endswith("ok")
    assert lines[3].startswith("int8") and "FAIL: accuracy drop 3.00 > 2.00 points" in lines[3]
