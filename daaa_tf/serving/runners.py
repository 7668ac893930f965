"""Running exported models: SavedModel / TFLite runners, batching, labels (overlays: ``daaa_tf.serving.overlay``).

Nothing here needs the Keras model or the rest of daaa_tf: an export directory is enough. TensorFlow is
imported only for SavedModels, so predicting with a .tflite file starts fast and needs only ai_edge_litert.
"""

import os

import numpy as np

from daaa_tf import MissingFileError, UserError
from daaa_tf.serving.contract import ATTENTION, LABELS_FILE, METADATA, SAVED_MODEL, SERVING


class SavedModelRunner:
    """Runs the ``serving_default`` (and ``attention``) of a SavedModel loaded with plain TF."""

    def __init__(self, path):
        if not _is_saved_model(path):
            raise UserError(f"{path!r} is not a SavedModel directory (no saved_model.pb)")
        import tensorflow as tf

        self.path = path
        try:
            self.loaded = tf.saved_model.load(path)
        except Exception as e:  # noqa: BLE001 - one clear line instead of a deep traceback
            raise UserError(f"{path!r} is not a loadable SavedModel: {type(e).__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else ''}") from None
        if SERVING not in self.loaded.signatures:
            raise UserError(f"SavedModel {path!r} has no {SERVING!r} signature")
        serve = self.loaded.signatures[SERVING]
        spec = serve.structured_input_signature[1]["images"]
        self.image_size = (int(spec.shape[1]), int(spec.shape[2]))
        self.class_names = None
        if METADATA in self.loaded.signatures:
            meta = self.loaded.signatures[METADATA]()
            self.class_names = [c.decode() for c in meta["class_names"].numpy()]

    def __call__(self, images):
        out = self.loaded.signatures[SERVING](images=np.asarray(images, np.uint8))
        return out["probabilities"].numpy(), out["class_ids"].numpy()

    def attention(self, images):
        """{key: [N, H_l, W_l]} in model order (keys sort in tap order)."""
        if ATTENTION not in self.loaded.signatures:
            raise UserError(f"SavedModel {self.path!r} has no {ATTENTION!r} signature")
        out = self.loaded.signatures[ATTENTION](images=np.asarray(images, np.uint8))
        return {k: out[k].numpy() for k in sorted(out)}


class TFLiteRunner:
    """Runs the ``serving_default`` signature of a .tflite file (or bytes) with ``ai_edge_litert``."""

    def __init__(self, model, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        self.path = model if isinstance(model, str) else "<bytes>"
        try:
            if isinstance(model, str):
                if not os.path.isfile(model):
                    raise MissingFileError(f"no TFLite model at {model!r}")
                self.interpreter = Interpreter(model_path=model, num_threads=num_threads)
            else:
                self.interpreter = Interpreter(model_content=bytes(model), num_threads=num_threads)
            self.runner = self.interpreter.get_signature_runner(SERVING)
        except FileNotFoundError:
            raise
        except Exception as e:  # noqa: BLE001 - one clear line instead of a deep traceback
            raise UserError(f"{self.path!r} is not a usable TFLite model with a {SERVING!r} signature: "
                            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
        shape = self.runner.get_input_details()["images"]["shape_signature"]
        self.image_size = (int(shape[1]), int(shape[2]))
        self.class_names = None

    def __call__(self, images):
        out = self.runner(images=np.ascontiguousarray(images, np.uint8))
        return np.asarray(out["probabilities"], np.float32), np.asarray(out["class_ids"])


def _is_saved_model(path):
    return os.path.isdir(path) and any(os.path.isfile(os.path.join(path, n))
                                       for n in ("saved_model.pb", "saved_model.pbtxt"))


def batches(n, batch_size):
    for start in range(0, n, batch_size):
        yield slice(start, min(n, start + batch_size))


def default_batch_size(image_size):
    """Evaluation batch: ~1 M input pixels per batch (256 digits at 32x32, 20 images at 224x224)."""
    h, w = image_size
    return int(max(1, min(256, (1 << 20) // (h * w))))


def run_batched(runner, images, batch_size=None):
    """(probabilities [N, K], class_ids [N]) of any runner over uint8 images, in batches."""
    batch_size = batch_size or default_batch_size(images.shape[1:3])
    parts = [runner(images[s]) for s in batches(len(images), batch_size)]
    return np.concatenate([p for p, _ in parts]), np.concatenate([c for _, c in parts])


def read_labels(path):
    """Class names from a labels.txt (one per line; UTF-8, a BOM and CRLF allowed), or None when there is none.
    A file that is not UTF-8 is a UserError naming the file and line."""
    from daaa_tf.io import read_text_lines

    if not os.path.isfile(path):
        return None
    return read_text_lines(path)


def load_runner(path, num_threads=None):
    """A SavedModelRunner for a SavedModel directory, a TFLiteRunner for a .tflite file."""
    if not os.path.exists(path):
        raise MissingFileError(f"--model: no model at {path!r} (expected a SavedModel directory or a .tflite "
                               "file written by export.saved_model / export.tflite)")
    if os.path.isdir(path):
        return SavedModelRunner(path)
    if path.endswith((".keras", ".h5")):
        raise UserError(f"--model: {path!r} is a Keras model; export it first (python -m export.saved_model) "
                        "and pass the SavedModel directory or a .tflite file")
    runner = TFLiteRunner(path, num_threads=num_threads)
    runner.class_names = read_labels(os.path.join(os.path.dirname(os.path.abspath(path)), LABELS_FILE))
    return runner


def attention_runner(runner):
    """The runner that provides attention maps: the SavedModel itself, or the SavedModel beside a .tflite."""
    if isinstance(runner, SavedModelRunner):
        return runner
    beside = os.path.join(os.path.dirname(os.path.abspath(runner.path)), SAVED_MODEL)
    if not _is_saved_model(beside):
        raise UserError(f"--attention_out: attention maps need the SavedModel (the .tflite files carry only "
                        f"serving_default), and there is none at {beside!r}; run python -m export.saved_model")
    return SavedModelRunner(beside)
