"""The export contract: endpoint names, artifact names and where each format lives (docs/design.md, "Export").

Pure Python (no numpy; TensorFlow only inside ``default_model_path``, for ``tf.io.gfile``): the writer, the parity
gate, the runners and the CLIs all read these.
"""

import os

SERVING = "serving_default"  # (images: uint8 [N, H, W, 3]) -> {probabilities [N, K], class_ids [N]}
SERVING_BYTES = "serving_bytes"  # (image_bytes: string [N], PNG/JPEG/BMP/GIF) -> the same as serving_default
ATTENTION = "attention"  # (images) -> {"<ii>_<layer>": float32 [N, H_l, W_l]}, Eq. 4 maps
METADATA = "metadata"  # () -> {class_names, tap_names, image_size, arch}
SAVED_MODEL = "saved_model"
SAVED_MODEL_VERSION = "1"  # <export>/saved_model/1/saved_model.pb: the numeric version directory TF Serving reads
LABELS_FILE = "labels.txt"
TFLITE_MODES = ("float", "dynamic", "int8")
FORMATS = (SAVED_MODEL,) + TFLITE_MODES
PARITY_FILE = "parity.json"


def tflite_name(mode):
    """File name of a TFLite variant inside the export directory."""
    return f"model_{mode}.tflite"


def artifact_path(export_dir, fmt):
    """Where format ``fmt`` lives in an export directory."""
    return os.path.join(export_dir, SAVED_MODEL if fmt == SAVED_MODEL else tflite_name(fmt))


def saved_model_version(base):
    """The version directory inside a SavedModel base directory (what ``tf.saved_model.load`` reads)."""
    return os.path.join(base, SAVED_MODEL_VERSION)


def default_model_path(run_dir):
    """``<run_dir>/adapt/model.keras`` if it exists, else ``<run_dir>/source/model.keras``."""
    adapt = os.path.join(run_dir, "adapt", "model.keras")
    source = os.path.join(run_dir, "source", "model.keras")
    import tensorflow as tf

    if tf.io.gfile.exists(adapt):
        return adapt
    if tf.io.gfile.exists(source):
        return source
    raise FileNotFoundError(f"--model not given and neither {adapt!r} nor {source!r} exists "
                            "(train a model first, or pass --model=PATH.keras)")
