"""export.predict: classes and probabilities per image, attention overlays, and each kind of bad input."""

import os
import shutil

import numpy as np
import pytest
import test_export_fixtures as fx
from PIL import Image
from test_export_fixtures import digits, error_lines, run_module

from daaa_tf.serving import overlay
from daaa_tf.serving import runners as predicting
from daaa_tf.serving import writer as exporting

trained_model, exported = fx.trained_model, fx.exported  # session fixtures shared by the export tests


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Three test digits as PNG / JPEG / a grey 28x28 PNG, an unreadable file; plus their true classes."""
    d = tmp_path_factory.mktemp("images")
    x, y = digits()[2][:3], digits()[3][:3]
    Image.fromarray(x[0]).save(d / "a.png")
    Image.fromarray(x[1]).save(d / "b.jpg", quality=95)
    Image.fromarray(x[2][..., 0]).resize((28, 28)).save(d / "c_grey.png")
    (d / "broken.png").write_bytes(b"\x89PNG but not really")
    return d, x, y


def _prediction_lines(stdout):
    return [line for line in stdout.splitlines() if ": class " in line]


def test_predict_saved_model_with_attention_overlays(exported, images, tmp_path):
    export_dir, _ = exported
    d, x, y = images
    out = tmp_path / "att"
    proc = run_module("export.predict", [f"--model={export_dir}/saved_model", f"--attention_out={out}",
                                         str(d / "a.png"), str(d / "b.jpg"), str(d / "c_grey.png"),
                                         str(d / "broken.png")])
    assert proc.returncode == 2, proc.stderr[-1500:]
    lines = _prediction_lines(proc.stdout)
    assert [line.split(":")[0] for line in lines] == [str(d / n) for n in ("a.png", "b.jpg", "c_grey.png")]
    runner = exporting.SavedModelRunner(f"{export_dir}/saved_model")
    _, expected = runner(np.stack([overlay.read_image(str(d / "a.png"), (32, 32))[0]]))
    assert f"class {expected[0]}  p=" in lines[0]
    assert sum(f"class {c}  p=" in line for line, c in zip(lines, y)) >= 2  # a trained model: mostly right
    assert "converted from mode L to RGB" in proc.stderr and "resized from 28x28 to 32x32" in proc.stderr
    assert error_lines(proc.stderr)[0].startswith(f"error: {d / 'broken.png'}: not a readable image")
    for name in ("a", "b", "c_grey"):
        png = Image.open(out / f"{name}_attention.png")
        assert png.format == "PNG" and png.size[0] > 3 * png.size[1]  # the input + three overlaid maps
    assert not (out / "broken_attention.png").exists()


def test_predict_tflite_takes_attention_from_the_saved_model_beside_it(exported, images, tmp_path):
    export_dir, _ = exported
    d, _, _ = images
    proc = run_module("export.predict", [f"--model={export_dir}/model_int8.tflite", f"--attention_out={tmp_path}",
                                         str(d / "a.png")])
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert len(_prediction_lines(proc.stdout)) == 1 and (tmp_path / "a_attention.png").is_file()
    assert "attention maps from the SavedModel" in proc.stderr
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(os.path.join(export_dir, "model_float.tflite"), alone)
    proc = run_module("export.predict", [f"--model={alone}/model_float.tflite", f"--attention_out={tmp_path}",
                                         str(d / "a.png")])
    assert proc.returncode == 2 and len(error_lines(proc.stderr)) == 1
    assert "attention maps need the SavedModel" in proc.stderr


def test_runners_agree_with_each_other(exported, images):
    export_dir, _ = exported
    x = digits()[2][:32]
    sm = predicting.load_runner(os.path.join(export_dir, "saved_model"))
    fl = predicting.load_runner(os.path.join(export_dir, "model_float.tflite"))
    assert sm.class_names == fl.class_names == [str(i) for i in range(10)]
    assert sm.image_size == fl.image_size == (32, 32)
    np.testing.assert_allclose(sm(x)[0], fl(x)[0], atol=1e-4)
    assert predicting.attention_runner(fl).path == os.path.join(export_dir, "saved_model", "1")  # the newest version


def test_bad_model_and_image_paths(tmp_path, images):
    d, _, _ = images
    with pytest.raises(FileNotFoundError, match="no model at"):
        predicting.load_runner(str(tmp_path / "nothing"))
    with pytest.raises(ValueError, match="not a SavedModel directory"):
        predicting.load_runner(str(tmp_path))
    with pytest.raises(ValueError, match="is a Keras model; export it first"):
        (tmp_path / "m.keras").write_text("x")
        predicting.load_runner(str(tmp_path / "m.keras"))
    with pytest.raises(ValueError, match="not a usable TFLite model"):
        predicting.load_runner(str(d / "a.png"))
    with pytest.raises(ValueError, match="not a readable image"):
        overlay.read_image(str(d / "broken.png"), (32, 32))
    with pytest.raises(FileNotFoundError, match="no such image"):
        overlay.read_image(str(tmp_path / "none.png"), (32, 32))
    Image.new("RGBA", (40, 30), (10, 200, 30, 128)).save(tmp_path / "rgba.png")
    image, notes = overlay.read_image(str(tmp_path / "rgba.png"), (32, 32))
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8 and len(notes) == 2


def test_predict_cli_bad_model_is_one_line(tmp_path, images):
    d, _, _ = images
    proc = run_module("export.predict", [f"--model={tmp_path}/missing", str(d / "a.png")])
    assert proc.returncode == 2 and len(error_lines(proc.stderr)) == 1 and "no model at" in proc.stderr
    assert proc.stdout.strip() == ""


def test_select_maps_keeps_first_and_last_in_order():
    maps = {f"{i:02d}_l{i}": np.zeros((2, 2)) for i in range(16)}
    kept = overlay.select_maps(maps, 4)
    assert list(kept) == ["00_l0", "05_l5", "10_l10", "15_l15"]
    assert list(overlay.select_maps(maps, 0)) == sorted(maps)
