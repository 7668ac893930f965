"""The export contract: endpoint names, artifact names and where each format lives (docs/design.md, "Export").

Pure Python (no TensorFlow, no numpy): the writer, the parity gate, the runners and the CLIs all read these.
"""

import os

from daaa_tf import MissingFileError

SERVING = "serving_default"  # (images: uint8 [N, H, W, 3]) -> {probabilities [N, K], class_ids [N]}
ATTENTION = "attention"  # (images) -> {"<ii>_<layer>": float32 [N, H_l, W_l]}, Eq. 4 maps
METADATA = "metadata"  # () -> {class_names, tap_names, image_size, arch}
SAVED_MODEL = "saved_model"
LABELS_FILE = "labels.txt"
TFLITE_MODES = ("float", "dynamic", "int8")
FORMATS = (SAVED_MODEL,) + TFLITE_MODES
PARITY_FILE = "parity.json"
EXPORT_MARKER = "daaa_tf_export.json"  # written first into every export directory: "this folder is ours"


def tflite_name(mode):
    """File name of a TFLite variant inside the export directory."""
    return f"model_{mode}.tflite"


def artifact_path(export_dir, fmt):
    """Where format ``fmt`` lives in an export directory."""
    return os.path.join(export_dir, SAVED_MODEL if fmt == SAVED_MODEL else tflite_name(fmt))


def default_model_path(run_dir):
    """``<run_dir>/adapt/model.keras`` if it exists, else ``<run_dir>/source/model.keras``."""
    adapt = os.path.join(run_dir, "adapt", "model.keras")
    source = os.path.join(run_dir, "source", "model.keras")
    if os.path.exists(adapt):
        return adapt
    if os.path.exists(source):
        return source
    raise MissingFileError(f"--model not given and neither {adapt!r} nor {source!r} exists "
                           "(train a model first, or pass --model=PATH.keras)")
