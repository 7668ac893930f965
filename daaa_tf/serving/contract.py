"""The export contract: endpoint names, artifact names and where each format lives (docs/design.md, "Export").

Pure Python (no TensorFlow, no numpy): the writer, the parity gate, the runners and the CLIs all read these;
the pipeline and the export stage guard export directories with ``check_export_dir`` (a folder is ours when it
holds EXPORT_MARKER).
"""

import os

from daaa_tf import MissingFileError, UserError, __version__
from daaa_tf.io import read_json, remove_stale_temporaries, write_json

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


def is_our_export(export_dir):
    """True if ``export_dir`` was written by this package: it holds EXPORT_MARKER, or (an export from before the
    marker) a parity.json of ours."""
    if os.path.isfile(os.path.join(export_dir, EXPORT_MARKER)):
        return True
    try:
        parity = read_json(os.path.join(export_dir, PARITY_FILE))
    except UserError:
        return False
    return (isinstance(parity, dict) and isinstance(parity.get("reference"), dict)
            and "model_sha256" in parity["reference"] and isinstance(parity.get("formats"), dict))


def check_export_dir(export_dir):
    """Refuses (UserError) an export directory that is a file, or an existing non-empty folder that is not an
    export of ours (its labels.txt / parity.json are the user's: never overwritten, whatever --overwrite says).
    Removes the staging folders and temporary files an interrupted export left."""
    if os.path.exists(export_dir) and not os.path.isdir(export_dir):
        raise UserError(f"--export_dir={export_dir}: is an existing file; expected a folder (new, empty, or an "
                        "earlier export)")
    if not os.path.isdir(export_dir):
        return
    remove_stale_temporaries(export_dir, recursive=False)
    if os.listdir(export_dir) and not is_our_export(export_dir):
        raise UserError(f"--export_dir={export_dir}: already exists and is not a checked export (no {EXPORT_MARKER} "
                        f"or {PARITY_FILE} written by daaa_tf in it); refusing to write into a folder that may hold "
                        "your own files: pass an --export_dir that is new, empty, or an earlier export")


def mark_export_dir(export_dir):
    """Writes EXPORT_MARKER into ``export_dir`` (created) unless it is there."""
    os.makedirs(export_dir, exist_ok=True)
    marker = os.path.join(export_dir, EXPORT_MARKER)
    if not os.path.isfile(marker):
        write_json(marker, {"written_by": f"daaa_tf {__version__} (export.saved_model / export.tflite)",
                            "contract": "docs/design.md, Export"})
