"""TFLite float / dynamic-range / full-int8: uint8 input, parity with the trained Keras model, run by LiteRT."""

import collections
import os

import numpy as np
import pytest
import test_export_fixtures as fx
from ai_edge_litert.interpreter import Interpreter
from test_export_fixtures import digits

from daaa_tf.models import load_classifier
from daaa_tf.serving import writer as exporting
from daaa_tf.serving.contract import TFLITE_MODES, tflite_name
from daaa_tf.serving.parity import check_bounds, default_bounds, parity_row
from daaa_tf.serving.runners import run_batched

trained_model, exported = fx.trained_model, fx.exported  # session fixtures shared by the export tests


@pytest.mark.parametrize("mode", TFLITE_MODES)
def test_tflite_parity_with_the_trained_keras_model(exported, trained_model, mode):
    export_dir, parity = exported
    path = os.path.join(export_dir, tflite_name(mode))
    runner = exporting.TFLiteRunner(path)
    _, _, test_x, test_y = digits()
    reference = exporting.keras_probabilities(load_classifier(trained_model), test_x)
    probabilities, class_ids = run_batched(runner, test_x)
    row = parity_row(reference, probabilities, class_ids, test_y)
    assert check_bounds(row, default_bounds()[mode]) == []
    assert row["finite"] and row["argmax_consistent"]
    recorded = parity["formats"][mode]
    assert recorded["top1_agreement"] == pytest.approx(row["top1_agreement"])
    assert recorded["size_bytes"] == os.path.getsize(path)
    if mode == "float":
        assert row["max_abs_delta"] < 1e-4 and row["top1_agreement"] == 1.0
    else:
        assert row["top1_agreement"] >= 0.97 and row["accuracy_drop"] <= 1.0


@pytest.mark.parametrize("mode", TFLITE_MODES)
def test_tflite_signature_takes_uint8_images_of_any_batch(exported, mode):
    export_dir, _ = exported
    interpreter = Interpreter(model_path=os.path.join(export_dir, tflite_name(mode)))
    assert interpreter.get_signature_list() == {
        "serving_default": {"inputs": ["images"], "outputs": ["class_ids", "probabilities"]}}
    runner = interpreter.get_signature_runner("serving_default")
    details = runner.get_input_details()["images"]
    assert details["dtype"] == np.uint8 and list(details["shape_signature"]) == [-1, 32, 32, 3]
    images = digits()[2]
    one = runner(images=images[:1])
    many = runner(images=images[:7])
    assert one["probabilities"].dtype == np.float32 and one["probabilities"].shape == (1, 10)
    assert many["probabilities"].shape == (7, 10) and many["class_ids"].shape == (7,)
    np.testing.assert_allclose(many["probabilities"][0], one["probabilities"][0], atol=1e-5)


def test_sizes_and_int8_is_fully_quantized(exported):
    export_dir, _ = exported
    sizes = {m: os.path.getsize(os.path.join(export_dir, tflite_name(m))) for m in TFLITE_MODES}
    assert sizes["dynamic"] < 0.35 * sizes["float"] and sizes["int8"] < 0.35 * sizes["float"]
    interpreter = Interpreter(model_path=os.path.join(export_dir, tflite_name("int8")))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    convs = [op for op in interpreter._get_ops_details() if op["op_name"] == "CONV_2D"]
    assert len(convs) == 4
    for op in convs:
        assert tensors[op["inputs"][0]]["dtype"] == np.int8 and tensors[op["outputs"][0]]["dtype"] == np.int8
    kinds = collections.Counter(op["op_name"] for op in interpreter._get_ops_details())
    assert kinds["QUANTIZE"] == 1 and kinds["DEQUANTIZE"] == 1


def test_int8_needs_representative_images_and_modes_are_checked(exported):
    export_dir, _ = exported
    saved_model = os.path.join(export_dir, "saved_model")
    with pytest.raises(ValueError, match="representative images"):
        exporting.convert_tflite(saved_model, "int8", None)
    with pytest.raises(ValueError, match="TFLite mode"):
        exporting.convert_tflite(saved_model, "fp16")


def test_a_file_that_is_not_a_tflite_model_is_one_clear_error(tmp_path):
    (tmp_path / "model.tflite").write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="not a usable TFLite model"):
        exporting.TFLiteRunner(str(tmp_path / "model.tflite"))
    with pytest.raises(FileNotFoundError, match="no TFLite model"):
        exporting.TFLiteRunner(str(tmp_path / "missing.tflite"))
