"""SavedModel export: signatures and dtypes, parity with Keras, a clean-process load, CLI and bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import test_export_fixtures as fx
from test_export_fixtures import digits, error_lines, fake_load_domain, run_cli, run_module

from daaa_tf.method.attention import attention_map
from daaa_tf.models import load_classifier, preprocess
from daaa_tf.serving import writer as exporting
from daaa_tf.serving.contract import default_model_path
from daaa_tf.serving.parity import (
    FORMATS,
    PARITY_FAILED_EXIT,
    check_bounds,
    default_bounds,
    failed_formats,
    format_table,
    parity_row,
)

trained_model, exported = fx.trained_model, fx.exported  # session fixtures shared by the export tests


def test_serving_signature_takes_uint8_and_returns_probabilities_and_class_ids(exported):
    export_dir, _ = exported
    assert os.listdir(os.path.join(export_dir, "saved_model")) == ["1"]  # the version directory TF Serving reads
    loaded = tf.saved_model.load(os.path.join(export_dir, "saved_model", "1"))
    assert {"serving_default", "serving_bytes", "attention", "metadata"} <= set(loaded.signatures)
    serve = loaded.signatures["serving_default"]
    spec = serve.structured_input_signature[1]["images"]
    assert spec.dtype == tf.uint8 and spec.shape.as_list() == [None, 32, 32, 3]
    images = digits()[2][:5]
    out = serve(images=tf.constant(images))
    assert set(out) == {"probabilities", "class_ids"}
    assert out["probabilities"].dtype == tf.float32 and out["probabilities"].shape == (5, 10)
    assert out["class_ids"].dtype == tf.int32 and out["class_ids"].shape == (5,)
    np.testing.assert_allclose(out["probabilities"].numpy().sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(out["class_ids"].numpy(), out["probabilities"].numpy().argmax(-1))
    meta = loaded.signatures["metadata"]()
    assert [c.decode() for c in meta["class_names"].numpy()] == [str(i) for i in range(10)]
    assert [t.decode() for t in meta["tap_names"].numpy()] == ["conv1", "conv2", "conv3"]
    assert meta["image_size"].numpy().tolist() == [32, 32] and meta["arch"].numpy() == b"digit_cnn"


def test_bytes_signature_equals_the_uint8_one_on_the_same_images(exported):
    import io as pyio

    from PIL import Image

    export_dir, _ = exported
    loaded = tf.saved_model.load(os.path.join(export_dir, "saved_model", "1"))
    spec = loaded.signatures["serving_bytes"].structured_input_signature[1]["image_bytes"]
    assert spec.dtype == tf.string and spec.shape.as_list() == [None]
    images = (digits()[2][:6] * np.array([1.0, 0.6, 0.3])).astype(np.uint8)  # coloured: channel order shows

    def encoded(array, fmt="PNG", mode=None):
        buffer = pyio.BytesIO()
        img = Image.fromarray(array)
        (img.convert(mode) if mode else img).save(buffer, format=fmt)
        return buffer.getvalue()

    expected = loaded.signatures["serving_default"](images=tf.constant(images))
    out = loaded.signatures["serving_bytes"](image_bytes=tf.constant([encoded(x) for x in images]))
    np.testing.assert_allclose(out["probabilities"].numpy(), expected["probabilities"].numpy(), atol=1e-6)
    np.testing.assert_array_equal(out["class_ids"].numpy(), expected["class_ids"].numpy())
    grey = images[:2, ..., 0]  # a greyscale PNG and a JPEG decode to what serving_default gets as RGB
    jpeg = tf.io.decode_jpeg(encoded(images[2], "JPEG"), channels=3)
    out = loaded.signatures["serving_bytes"](image_bytes=tf.constant(
        [encoded(grey[0]), encoded(grey[1]), encoded(images[2], "JPEG")]))
    rgb = np.concatenate([np.repeat(grey[..., None], 3, axis=-1), jpeg.numpy()[None]])
    expected = loaded.signatures["serving_default"](images=tf.constant(rgb))
    np.testing.assert_allclose(out["probabilities"].numpy(), expected["probabilities"].numpy(), atol=1e-6)
    big = np.kron(images[3], np.ones((2, 2, 1), np.uint8))  # 64x64: resized to 32x32 in the graph
    out = loaded.signatures["serving_bytes"](image_bytes=tf.constant([encoded(big)]))
    assert out["probabilities"].shape == (1, 10) and int(out["class_ids"][0]) == int(expected_ids(loaded, images[3]))


def expected_ids(loaded, image):
    return loaded.signatures["serving_default"](images=tf.constant(image[None]))["class_ids"][0]


def test_saved_model_matches_keras_including_attention_maps(exported, trained_model):
    export_dir, _ = exported
    model = load_classifier(trained_model)
    images = digits()[2][:16]
    out = model(preprocess(images, "digit_cnn"), training=False)
    runner = exporting.SavedModelRunner(os.path.join(export_dir, "saved_model"))
    probabilities, _ = runner(images)
    np.testing.assert_allclose(probabilities, tf.nn.softmax(out["logits"]).numpy(), atol=1e-5)
    maps = runner.attention(images)
    assert list(maps) == ["0_conv1", "1_conv2", "2_conv3"]
    for (key, a), tap in zip(maps.items(), out["taps"]):
        assert a.shape == (16, tap.shape[1], tap.shape[2]), key
        np.testing.assert_allclose(a.reshape(16, -1), attention_map(tap).numpy(), atol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(a.reshape(16, -1), axis=1), 1.0, atol=1e-3)


def test_saved_model_loads_in_a_process_that_never_imports_this_package(exported, tmp_path):
    export_dir, _ = exported
    images = digits()[2][:4]
    np.save(tmp_path / "images.npy", images)
    script = (
        "import json, sys, numpy as np, tensorflow as tf\n"
        f"m = tf.saved_model.load({os.path.join(export_dir, 'saved_model', '1')!r})\n"
        f"x = tf.constant(np.load({str(tmp_path / 'images.npy')!r}))\n"
        "out = m.signatures['serving_default'](images=x)\n"
        "att = m.signatures['attention'](images=x)\n"
        "mods = [n for n in sys.modules if n.split('.')[0] in ('daaa_tf', 'export', 'trainers')]\n"
        "print(json.dumps({'p': out['probabilities'].numpy().tolist(), 'ids': out['class_ids'].numpy().tolist(),"
        " 'att': {k: list(v.shape) for k, v in att.items()}, 'mods': mods}))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["mods"] == []
    expected, ids = exporting.SavedModelRunner(os.path.join(export_dir, "saved_model"))(images)
    np.testing.assert_allclose(result["p"], expected, atol=1e-6)
    assert result["ids"] == ids.tolist()
    assert result["att"] == {"0_conv1": [4, 32, 32], "1_conv2": [4, 16, 16], "2_conv3": [4, 8, 8]}


def test_parity_json_has_every_format_within_bounds(exported):
    export_dir, parity = exported
    on_disk = json.load(open(os.path.join(export_dir, "parity.json")))
    assert set(on_disk["formats"]) == set(exporting.FORMATS)
    assert on_disk["reference"]["num_examples"] == 1000 and on_disk["reference"]["accuracy"] > 90
    for name, row in on_disk["formats"].items():
        assert row["ok"] and row["installed"] and row["finite"], (name, row)
        assert {"max_abs_delta", "top1_agreement", "accuracy", "accuracy_drop", "size_bytes"} <= set(row)
    assert on_disk["formats"]["saved_model"]["max_abs_delta"] <= 1e-5
    assert open(os.path.join(export_dir, "labels.txt")).read().split() == [str(i) for i in range(10)]
    assert not [n for n in os.listdir(export_dir) if n.startswith(".")], "temporary files left behind"
    table = format_table(parity)
    assert all(name in table for name in exporting.FORMATS)


def test_out_of_bound_format_is_not_installed_unless_told(trained_model, tmp_path):
    model = load_classifier(trained_model)
    _, _, test_x, test_y = digits()
    impossible = {"saved_model": {"max_abs_delta": -1.0}}
    parity, failed = exporting.export_formats(model, str(tmp_path), ["saved_model"], test_x[:64], test_y[:64],
                                              bounds=impossible)
    assert failed == ["saved_model"] and not os.path.exists(tmp_path / "saved_model")
    row = parity["formats"]["saved_model"]
    assert not row["ok"] and not row["installed"] and row["violations"]
    assert [n for n in os.listdir(tmp_path) if n.startswith(".")] == []
    _, failed = exporting.export_formats(model, str(tmp_path), ["saved_model"], test_x[:64], test_y[:64],
                                         bounds=impossible, enforce_bounds=False)
    assert failed == ["saved_model"] and os.path.isdir(tmp_path / "saved_model")


GOOD_ROW = {"max_abs_delta": 0.0, "top1_agreement": 1.0, "accuracy_drop": 0.0, "finite": True}


@pytest.mark.parametrize("fmt, field, bad, good", [
    ("saved_model", "max_abs_delta", 2e-5, 1e-5),
    ("float", "max_abs_delta", 2e-4, 1e-4),
    ("dynamic", "top1_agreement", 0.979, 0.98),
    ("dynamic", "accuracy_drop", 1.01, 1.0),
    ("int8", "top1_agreement", 0.929, 0.93),
    ("int8", "accuracy_drop", 2.01, 2.0),
])
def test_every_format_bound_is_a_gate_that_trips_on_its_own(fmt, field, bad, good):
    bounds = default_bounds()[fmt]
    assert check_bounds(GOOD_ROW, bounds) == []
    assert check_bounds({**GOOD_ROW, field: good}, bounds) == []  # the bound itself passes
    violations = check_bounds({**GOOD_ROW, field: bad}, bounds)
    assert len(violations) == 1, violations  # this one field alone fails the format
    assert {"max_abs_delta": "max |delta|", "top1_agreement": "top-1 agreement",
            "accuracy_drop": "accuracy drop"}[field] in violations[0]


def test_quantized_formats_are_judged_by_agreement_and_accuracy_not_max_delta():
    bounds = default_bounds()
    assert set(bounds) == set(FORMATS)
    for fmt in ("saved_model", "float"):
        assert set(bounds[fmt]) == {"max_abs_delta"}
    for fmt in ("dynamic", "int8"):
        assert set(bounds[fmt]) == {"min_top1_agreement", "max_accuracy_drop"}
        assert check_bounds({**GOOD_ROW, "max_abs_delta": 0.5}, bounds[fmt]) == []
        assert check_bounds({**GOOD_ROW, "accuracy_drop": -3.0}, bounds[fmt]) == []  # a gain never fails
    # Measured rows that must pass: real MNIST -> MNIST-M dynamic (the row that once cost a finished run), the
    # demo's adapted model, the demo's source-only model in int8 (near-ties flip).
    assert check_bounds({"max_abs_delta": 0.064, "top1_agreement": 0.995, "accuracy_drop": 0.06, "finite": True},
                        bounds["dynamic"]) == []
    assert check_bounds({"max_abs_delta": 0.042, "top1_agreement": 0.998, "accuracy_drop": 0.0, "finite": True},
                        bounds["dynamic"]) == []
    for agreement, drop in ((0.992, -0.4), (0.94, 1.4), (0.964, 0.6)):
        assert check_bounds({"max_abs_delta": 0.3, "top1_agreement": agreement, "accuracy_drop": drop,
                             "finite": True}, bounds["int8"]) == []
    # A broken conversion (agreement near chance, tens of points lost) fails both on both counts.
    broken = {"max_abs_delta": 0.9, "top1_agreement": 0.12, "accuracy_drop": 70.0, "finite": True}
    for fmt in ("dynamic", "int8"):
        assert len(check_bounds(broken, bounds[fmt])) == 2


def test_failed_formats_lists_the_rows_outside_their_bounds_in_format_order():
    rows = {"int8": {"ok": False}, "saved_model": {"ok": True}, "dynamic": {"ok": False}, "float": {"ok": True}}
    assert failed_formats({"formats": rows}) == ["dynamic", "int8"]
    assert failed_formats({}) == [] and failed_formats(None) == []


def test_non_finite_outputs_fail_every_bound():
    # The silent-NaN TFLite trap (docs/design.md, "Export") must never pass a parity check.
    reference = np.full((4, 3), 1 / 3, np.float32)
    row = parity_row(reference, np.full((4, 3), np.nan, np.float32), np.zeros(4, int), np.zeros(4))
    assert not row["finite"]
    for bounds in default_bounds().values():
        assert "non-finite probabilities" in check_bounds(row, bounds)


def test_existing_export_is_refused_and_overwrite_replaces_it(trained_model, tmp_path):
    model = load_classifier(trained_model)
    _, _, test_x, test_y = digits()
    exporting.export_formats(model, str(tmp_path), ["saved_model"], test_x[:32], test_y[:32])
    stamp = os.path.getmtime(tmp_path / "saved_model" / "1" / "saved_model.pb")
    with pytest.raises(ValueError, match="already exists.*--overwrite"):
        exporting.export_formats(model, str(tmp_path), ["saved_model"], test_x[:32], test_y[:32])
    assert os.path.getmtime(tmp_path / "saved_model" / "1" / "saved_model.pb") == stamp
    exporting.export_formats(model, str(tmp_path), ["saved_model"], test_x[:32], test_y[:32], overwrite=True)
    assert os.path.getmtime(tmp_path / "saved_model" / "1" / "saved_model.pb") != stamp


def test_bad_model_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model at"):
        load_classifier(str(tmp_path / "missing.keras"))
    (tmp_path / "junk.keras").write_text("not a model")
    with pytest.raises(ValueError, match="not a loadable Keras model"):
        load_classifier(str(tmp_path / "junk.keras"))
    with pytest.raises(FileNotFoundError, match="neither"):
        default_model_path(str(tmp_path))
    for stage in ("source", "adapt"):
        os.makedirs(tmp_path / stage)
        (tmp_path / stage / "model.keras").write_text("x")
        assert default_model_path(str(tmp_path)) == str(tmp_path / stage / "model.keras")


def test_cli_exports_prints_the_table_and_exits_nonzero_out_of_bounds(trained_model, tmp_path, monkeypatch,
                                                                     capsys):
    import daaa_tf.data
    import export.saved_model
    import export.tflite

    calls = []
    monkeypatch.setattr(daaa_tf.data, "load_domain", fake_load_domain(calls), raising=False)
    common = [f"--run_dir={tmp_path}", f"--model={trained_model}", "--target=fake"]
    assert run_cli(export.saved_model.main, common) == 0
    assert ("fake", "test", 32, "target") in calls
    # Real-size parity by default (--num_parity=0): the whole target test set, here all 1,000 fixture digits.
    on_disk = json.load(open(tmp_path / "export" / "parity.json"))
    assert on_disk["reference"]["num_examples"] == 1000 == on_disk["formats"]["saved_model"]["num_examples"]
    assert run_cli(export.tflite.main, common + ["--tflite_formats=float,dynamic",
                                                 "--dynamic_min_agreement=1.01"]) == PARITY_FAILED_EXIT == 3
    out = capsys.readouterr()
    assert "saved_model" in out.out and "FAIL" in out.out and "dynamic outside the parity bounds" in out.err
    assert os.path.isfile(tmp_path / "export" / "model_float.tflite")
    assert not os.path.exists(tmp_path / "export" / "model_dynamic.tflite")
    parity = json.load(open(tmp_path / "export" / "parity.json"))
    assert set(parity["formats"]) == {"saved_model", "float", "dynamic"}  # rows merged across the two runs
    assert not parity["formats"]["dynamic"]["ok"] and parity["reference"]["target"] == "fake"
    calls.clear()
    assert run_cli(export.saved_model.main, common) == 0  # same model, within bounds: kept, nothing loaded
    assert calls == [] and "up to date" in capsys.readouterr().out
    assert run_cli(export.tflite.main, common + ["--tflite_formats=int8", "--num_calibration=50"]) == 0
    assert ("fake", "train", 32, "target") in calls
    assert not json.load(open(tmp_path / "export" / "parity.json"))["complete"]  # dynamic is missing
    assert run_cli(export.tflite.main, common + ["--tflite_formats=dynamic"]) == 0
    assert json.load(open(tmp_path / "export" / "parity.json"))["complete"]
    other = tmp_path / "other.keras"
    load_classifier(trained_model).save(other)  # saved again (metadata has the time): another sha256
    with pytest.raises(ValueError, match="already exists and is not a checked export"):
        run_cli(export.saved_model.main, [*common[:1], f"--model={other}", *common[2:]])


def test_cli_bad_input_is_one_line_and_status_2(trained_model, tmp_path):
    proc = run_module("export.saved_model", [f"--run_dir={tmp_path}", f"--model={tmp_path}/nope.keras"])
    assert proc.returncode == 2 and error_lines(proc.stderr) == [
        f"error: no model at '{tmp_path}/nope.keras' (expected a .keras file written by trainers.source or "
        "trainers.adapt)"], proc.stderr[-1500:]
    os.makedirs(tmp_path / "export" / "saved_model")
    proc = run_module("export.saved_model", [f"--run_dir={tmp_path}", f"--model={trained_model}"])
    assert proc.returncode == 2 and len(error_lines(proc.stderr)) == 1
    assert "already exists and is not a checked export" in proc.stderr
    assert os.listdir(tmp_path / "export") == ["saved_model"]


def test_a_mixed_precision_model_is_exported_in_float32(trained_model, tmp_path):
    import keras

    from daaa_tf.models import build_classifier

    float_model = load_classifier(trained_model)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        mixed = build_classifier("digit_cnn", 10, 32)
    finally:
        keras.config.set_dtype_policy(previous)
    mixed.set_weights(float_model.get_weights())
    mixed.save(tmp_path / "mixed.keras")
    model = load_classifier(str(tmp_path / "mixed.keras"))
    assert model.get_layer("conv1").dtype_policy.compute_dtype == "bfloat16"
    assert exporting.as_float32(float_model) is float_model
    _, _, test_x, test_y = digits()
    parity, failed = exporting.export_formats(model, str(tmp_path / "export"), ["saved_model", "float"],
                                              test_x[:64], test_y[:64])
    assert failed == [] and parity["reference"]["trained_compute_dtype"] == "bfloat16"
    probabilities, _ = exporting.SavedModelRunner(str(tmp_path / "export" / "saved_model"))(test_x[:64])
    np.testing.assert_allclose(probabilities, exporting.keras_probabilities(float_model, test_x[:64]), atol=1e-5)


def test_calibration_set_depends_on_its_seed_alone():
    """The int8 calibration images are the same whatever TF's global seed is (the pipeline's stages set it before
    the export; a standalone export does not), differ with the seed, and come from the first max(buffer, n)."""
    from daaa_tf.data.pipelines import take_examples

    images = np.arange(3000 * 4, dtype=np.uint8).reshape(3000, 2, 2, 1) % 251
    labels = np.arange(3000)
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    picked = []
    for global_seed in (1, 2):
        tf.random.set_seed(global_seed)
        picked.append(take_examples(ds, 200, shuffle_seed=0)[1])
    np.testing.assert_array_equal(picked[0], picked[1])
    other = take_examples(ds, 200, shuffle_seed=1)[1]
    assert len(set(picked[0])) == 200 and picked[0].max() < 2048 and not np.array_equal(picked[0], other)
    assert not np.array_equal(np.sort(picked[0]), np.arange(200))  # drawn, not the first 200
    x, y = take_examples(ds, 200, shuffle_seed=0)
    np.testing.assert_array_equal(x, images[y])  # images stay with their labels
    np.testing.assert_array_equal(take_examples(ds, 5)[1], np.arange(5))  # no seed: the first ones, in order
