"""ResNet-50 (no pretrained weights, 32x32, 3 classes) exports to SavedModel and float TFLite with parity."""

import os

import numpy as np

from daaa_tf.models import build_classifier, load_classifier, model_spec
from daaa_tf.serving import writer as exporting
from daaa_tf.serving.parity import format_table


def test_resnet50_exports_to_saved_model_and_float_tflite(tmp_path):
    path = str(tmp_path / "model.keras")
    build_classifier("resnet50", 3, 32, weights=None, attention_layers="blocks").save(path)
    model = load_classifier(path)  # what the CLI does: the arch and sizes come from the loaded model
    spec = model_spec(model)
    assert spec["arch"] == "resnet50" and spec["num_classes"] == 3 and spec["image_size"] == (32, 32)
    assert len(spec["tap_names"]) == 16 and spec["tap_names"][-1] == "conv5_block3_out"
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 3, 24)
    parity, failed = exporting.export_formats(model, str(tmp_path / "export"), ["saved_model", "float"], images,
                                              labels)
    assert failed == [], format_table(parity)
    assert parity["formats"]["float"]["max_abs_delta"] <= 1e-4
    runner = exporting.SavedModelRunner(str(tmp_path / "export" / "saved_model"))
    maps = runner.attention(images[:2])
    assert len(maps) == 16 and list(maps)[0] == "00_conv2_block1_out"
    assert maps["15_conv5_block3_out"].shape == (2, 1, 1) and maps["00_conv2_block1_out"].shape == (2, 8, 8)
    assert runner.class_names == ["0", "1", "2"]
    assert os.path.isfile(tmp_path / "export" / "model_float.tflite")
