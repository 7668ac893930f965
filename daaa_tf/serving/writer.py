"""Export a classifier: SavedModel with uint8 signatures, TFLite float / dynamic-range / full-int8, parity.

The SavedModel is written with ``keras.export.ExportArchive`` and custom uint8 endpoints (preprocessing inside
the graph), never with a bare ``tf.Module`` holding the Keras model: that saves a correct SavedModel but its
TFLite conversion keeps uninitialised variables and silently returns NaN (docs/design.md, "Export"). Every format is
compared with the Keras model on the target test set (``daaa_tf.serving.parity``), and a format outside its bound is
not installed (``daaa_tf.serving.parity.check_bounds``).

Signatures of ``saved_model/1/`` (the numeric version directory TF Serving expects):
  serving_default(images: uint8 [N, H, W, 3]) -> {probabilities: float32 [N, K], class_ids: int32 [N]}
  serving_bytes(image_bytes: string [N]) -> the same, from encoded PNG / JPEG / BMP / GIF images (decoded to RGB,
      resized bilinearly to H x W when their size differs, like ``export.predict``)
  attention(images: uint8 [N, H, W, 3]) -> {"<ii>_<layer>": float32 [N, H_l, W_l]}, Eq. 4 maps, L2-normalised
  metadata() -> {class_names: string [K], tap_names: string [L], image_size: int32 [2], arch: string []}
"""

import os
import shutil
import tempfile
import time
import warnings

import keras
import numpy as np
import tensorflow as tf

from daaa_tf import UserError, io
from daaa_tf.io import atomic_path, read_json, write_json
from daaa_tf.method.attention import attention_map
from daaa_tf.models import build_classifier, model_spec, preprocess
from daaa_tf.serving.contract import (
    ATTENTION,
    FORMATS,
    LABELS_FILE,
    METADATA,
    PARITY_FILE,
    SAVED_MODEL,
    SERVING,
    SERVING_BYTES,
    TFLITE_MODES,
    artifact_path,
    check_export_dir,
    mark_export_dir,
    saved_model_version,
    tflite_name,
)
from daaa_tf.serving.parity import default_bounds, evaluate_format, merge_parity
from daaa_tf.serving.runners import SavedModelRunner, TFLiteRunner, batches, default_batch_size, resolve_saved_model


def as_float32(model):
    """``model`` itself if it computes in float32, else a float32 rebuild with the same weights.

    A model trained under ``mixed_bfloat16`` / ``mixed_float16`` keeps that policy per layer when loaded;
    exports compute in float32 (what TFLite and most servers run), so it is rebuilt and its weights copied.
    """
    if all(lyr.dtype_policy.compute_dtype == "float32" for lyr in model.layers):
        return model
    spec = model_spec(model)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        clone = build_classifier(spec["arch"], spec["num_classes"], spec["image_size"], weights=None,
                                 attention_layers=spec["tap_names"], widths=spec["widths"])
    finally:
        keras.config.set_dtype_policy(previous)
    clone.set_weights(model.get_weights())
    return clone


def attention_keys(tap_names):
    """Output keys of the ``attention`` signature: '<index>_<layer>' so that sorting gives the model order."""
    width = len(str(max(len(tap_names) - 1, 0)))
    return [f"{i:0{width}d}_{name}" for i, name in enumerate(tap_names)]


def build_archive(model, class_names=None):
    """A ``keras.export.ExportArchive`` with the uint8 ``serving_default``, ``attention`` and ``metadata``."""
    spec = model_spec(model)
    arch, (h, w), k = spec["arch"], spec["image_size"], spec["num_classes"]
    class_names = [str(c) for c in (class_names or range(k))]
    if len(class_names) != k:
        raise UserError(f"{len(class_names)} class names for a model with {k} classes")
    keys = attention_keys(spec["tap_names"])
    image_spec = tf.TensorSpec([None, h, w, 3], tf.uint8, name="images")

    @tf.function(input_signature=[image_spec])
    def serve(images):
        logits = model(preprocess(images, arch), training=False)["logits"]
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
        return {"probabilities": probabilities, "class_ids": tf.argmax(probabilities, -1, output_type=tf.int32)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve_bytes(image_bytes):
        return serve(decode_images(image_bytes, (h, w)))

    @tf.function(input_signature=[image_spec])
    def attention(images):
        taps = model(preprocess(images, arch), training=False)["taps"]
        out = {}
        for key, f in zip(keys, taps):
            out[key] = tf.reshape(attention_map(f), [-1, f.shape[1], f.shape[2]])
        return out

    tap_names = list(spec["tap_names"])

    @tf.function(input_signature=[])
    def metadata():
        return {"class_names": tf.constant(class_names, tf.string),
                "tap_names": tf.constant(tap_names, tf.string, shape=[len(tap_names)]),
                "image_size": tf.constant([h, w], tf.int32), "arch": tf.constant(arch)}

    # No archive.track(model): it would add the Keras variables a second time beside the tf.Variables the
    # endpoints use (which the archive tracks by itself), doubling the SavedModel's size.
    archive = keras.export.ExportArchive()
    archive.add_endpoint(SERVING, serve)
    archive.add_endpoint(SERVING_BYTES, serve_bytes)
    archive.add_endpoint(ATTENTION, attention)
    archive.add_endpoint(METADATA, metadata)
    return archive


def decode_images(image_bytes, size):
    """string [N] of encoded images -> uint8 [N, H, W, 3]: decoded to RGB (grey and RGBA converted), resized
    bilinearly (antialiased) to ``size`` when an image has another size, rounded back to uint8."""

    def one(data):
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        image.set_shape([None, None, 3])
        same = tf.reduce_all(tf.equal(tf.shape(image)[:2], size))
        image = tf.cond(same, lambda: image, lambda: tf.cast(tf.clip_by_value(tf.round(tf.image.resize(
            image, size, method="bilinear", antialias=True)), 0, 255), tf.uint8))
        return tf.ensure_shape(image, [*size, 3])

    return tf.map_fn(one, image_bytes, fn_output_signature=tf.TensorSpec([*size, 3], tf.uint8))


def write_saved_model(model, path, class_names=None):
    """Writes the SavedModel of ``build_archive`` into ``path``/1 (``path`` a new directory: the base TF Serving
    watches; no checks, no rename). Returns ``path``."""
    build_archive(model, class_names).write_out(saved_model_version(path), verbose=False)
    return path


def convert_tflite(saved_model_dir, mode, representative_images=None):
    """Converts the ``serving_default`` signature of a SavedModel directory to TFLite bytes.

    mode: 'float' (float32), 'dynamic' (int8 weights, float activations) or 'int8' (full integer: int8
    weights and activations calibrated on ``representative_images``, uint8 [n, H, W, 3]; only the input
    cast and the final dequantize stay float). The input stays uint8 images in every mode.
    """
    if mode not in TFLITE_MODES:
        raise ValueError(f"TFLite mode must be one of {TFLITE_MODES}, got {mode!r}")
    saved_model_dir = resolve_saved_model(saved_model_dir) or saved_model_dir  # a version base: its newest
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=[SERVING])
    if mode != "float":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "int8":
        if representative_images is None or len(representative_images) == 0:
            raise UserError("int8 TFLite needs representative images (--num_calibration > 0)")
        images = np.asarray(representative_images, np.uint8)

        def representative():
            for i in range(len(images)):
                yield {"images": images[i:i + 1]}

        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with warnings.catch_warnings():
        # The converter's own calibrator still uses tf.lite.Interpreter and warns that it is deprecated.
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
        return converter.convert()


def keras_probabilities(model, images, batch_size=None):
    """Softmax of the Keras classifier on uint8 images (the reference every format is compared with)."""
    arch = model_spec(model)["arch"]
    batch_size = batch_size or default_batch_size(images.shape[1:3])
    fn = tf.function(lambda x: tf.nn.softmax(tf.cast(model(preprocess(x, arch), training=False)["logits"],
                                                       tf.float32), axis=-1))
    spec = tf.TensorSpec([None, *images.shape[1:]], tf.uint8)
    fn = fn.get_concrete_function(spec)
    return np.concatenate([fn(tf.constant(images[s])).numpy() for s in batches(len(images), batch_size)])


def directory_size(path):
    if not io.gfile.isdir(path):
        return io.size(path)
    return sum(io.size(os.path.join(d, f)) for d, _, files in io.gfile.walk(path) for f in files)


def export_formats(model, export_dir, formats, parity_images, parity_labels, calibration_images=None,
                   class_names=None, bounds=None, overwrite=False, enforce_bounds=True, reference_info=None,
                   log=lambda msg: None):
    """Exports ``model`` to each of ``formats`` in ``export_dir``, checking each against the Keras model.

    The exports and the Keras reference compute in float32 (``as_float32``). Every artifact is staged under a
    temporary name, evaluated on the parity set (target test images and labels), and renamed into place only
    if it is within its bounds (or ``enforce_bounds`` is False), so no half-written or out-of-bound model is
    ever left under its final name. Writes ``labels.txt`` and merges the rows into ``parity.json``.
    Returns (parity dict, names of the formats that failed their bounds).
    """
    compute_dtype = next((lyr.dtype_policy.compute_dtype for lyr in model.layers
                          if lyr.dtype_policy.compute_dtype != "float32"), "float32")
    model = as_float32(model)
    spec = model_spec(model)
    targets = _check_request(spec, export_dir, formats, parity_images, calibration_images, overwrite)
    bounds = {**default_bounds(), **(bounds or {})}
    mark_export_dir(export_dir)
    log(f"reference: Keras model on {len(parity_images)} target test images")
    reference = keras_probabilities(model, parity_images)
    info = {**spec, **(reference_info or {}), "num_examples": int(len(parity_images)),
            "trained_compute_dtype": compute_dtype,
            "accuracy": float(100.0 * (reference.argmax(-1) == np.asarray(parity_labels)).mean())}
    info["image_size"] = list(spec["image_size"])
    rows = {}
    # Staged on local disk beside the export (or in the local temp dir when the export is on another filesystem:
    # the TFLite converter and interpreter read local files); installed by copy + rename.
    staging = tempfile.mkdtemp(prefix=".export.", dir=None if io.is_remote(export_dir) else export_dir)
    try:
        saved_model = os.path.join(staging, SAVED_MODEL)
        log("writing the SavedModel")
        write_saved_model(model, saved_model, class_names)
        for fmt in formats:
            rows[fmt] = _stage_and_install(fmt, saved_model, staging, targets[fmt], calibration_images,
                                           (parity_images, parity_labels, reference), bounds[fmt],
                                           enforce_bounds, log)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    names = [str(c) for c in (class_names or range(spec["num_classes"]))]
    io.write_text(os.path.join(export_dir, LABELS_FILE), "".join(f"{n}\n" for n in names))
    path = os.path.join(export_dir, PARITY_FILE)
    parity = merge_parity(read_json(path, {}), info, rows)
    write_json(path, parity)
    return parity, [fmt for fmt, row in rows.items() if not row["ok"]]


def _check_request(spec, export_dir, formats, parity_images, calibration_images, overwrite):
    """{format: final path}, or a one-line UserError for unknown formats, existing files or bad inputs."""
    check_export_dir(export_dir)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise UserError(f"export formats: expected some of {FORMATS}, got {list(formats)}")
    targets = {f: artifact_path(export_dir, f) for f in formats}
    existing = [p for p in targets.values() if io.gfile.exists(p)]
    if existing and not overwrite:
        raise UserError(f"{existing[0]!r} already exists (pass --overwrite to replace it)")
    if "int8" in formats and (calibration_images is None or len(calibration_images) == 0):
        raise UserError("int8 TFLite needs representative images (--num_calibration > 0)")
    if tuple(parity_images.shape[1:]) != (*spec["image_size"], 3):
        raise UserError(f"parity images are {parity_images.shape[1:]}, the model takes "
                        f"{(*spec['image_size'], 3)}")
    return targets


def _stage_and_install(fmt, saved_model, staging, target, calibration_images, parity_set, bounds,
                       enforce_bounds, log):
    """Converts ``fmt`` into ``staging``, evaluates it on ``parity_set`` (images, labels, reference
    probabilities) and renames it to ``target`` when within ``bounds`` (or not enforced); returns its row."""
    images, labels, reference = parity_set
    start = time.perf_counter()
    if fmt == SAVED_MODEL:
        artifact, runner = saved_model, SavedModelRunner(saved_model)
    else:
        log(f"converting to TFLite {fmt}")
        artifact = os.path.join(staging, tflite_name(fmt))
        with open(artifact, "wb") as f:
            f.write(convert_tflite(saved_model, fmt, calibration_images))
        runner = TFLiteRunner(artifact)
    convert_seconds = time.perf_counter() - start
    row = evaluate_format(runner, images, labels, reference, bounds, path=target)
    row["num_examples"] = int(len(images))
    row.update(size_bytes=directory_size(artifact), convert_seconds=round(convert_seconds, 3))
    row["installed"] = row["ok"] or not enforce_bounds
    if row["installed"]:
        with atomic_path(target) as tmp:
            if fmt == SAVED_MODEL:
                io.copy_tree(artifact, tmp)  # the staged copy is still needed for conversion
            else:
                io.gfile.copy(artifact, tmp, overwrite=True)
    return row
