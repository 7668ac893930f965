"""Flags of the export stage (export.saved_model, export.tflite, export.predict).

``define_export_flags()`` is idempotent, so the lead's ``trainers.flags.define_all()`` may call it too.
"""

from absl import flags

FLAGS = flags.FLAGS


def define_export_flags():
    """Every export / predict flag. Bounds are checked against the Keras model on the target test set."""
    if "export_dir" in FLAGS:
        return
    flags.DEFINE_string("model", None, "export.saved_model / export.tflite: the Keras model to export (default: "
                        "<run_dir>/adapt/model.keras if it exists, else <run_dir>/source/model.keras). "
                        "export.predict: a SavedModel directory or a .tflite file (default: "
                        "<run_dir>/export/saved_model).")
    flags.DEFINE_string("export_dir", None, "Where exports go (default: <run_dir>/export).")
    flags.DEFINE_bool("overwrite", False, "Replace existing exported models instead of refusing.")
    flags.DEFINE_list("tflite_formats", ["float", "dynamic", "int8"], "export.tflite: variants to write: "
                      "float (float32), dynamic (dynamic-range int8 weights), int8 (full integer).")
    flags.DEFINE_integer("num_calibration", 200, "int8: representative images drawn from the target training "
                         "set.", lower_bound=0)
    flags.DEFINE_integer("num_parity", 0, "Target test images used for parity (0 = all).", lower_bound=0)
    flags.DEFINE_bool("enforce_bounds", True, "A format outside its bounds is not installed and the command "
                      "exits with status 3 (the pipeline then still writes its report). With false it is "
                      "installed anyway (parity.json still says FAIL, the status is still 3).")
    flags.DEFINE_float("saved_model_max_delta", 1e-5, "SavedModel: max |Δ probability| vs Keras.")
    flags.DEFINE_float("float_max_delta", 1e-4, "TFLite float: max |Δ probability| vs Keras.")
    flags.DEFINE_float("dynamic_min_agreement", 0.98, "TFLite dynamic-range: min top-1 agreement with Keras "
                       "(its max |Δ probability| is reported, not bounded; see daaa_tf.serving.parity).")
    flags.DEFINE_float("dynamic_max_accuracy_drop", 1.0, "TFLite dynamic-range: max target-test accuracy drop "
                       "vs Keras, in percentage points.")
    flags.DEFINE_float("int8_min_agreement", 0.93, "TFLite int8: min top-1 agreement with Keras.")
    flags.DEFINE_float("int8_max_accuracy_drop", 2.0, "TFLite int8: max target-test accuracy drop vs Keras, "
                       "in percentage points (int8 flips near-ties; see daaa_tf.serving.parity.default_bounds).")
    flags.DEFINE_string("attention_out", None, "export.predict: write each image with its attention maps "
                        "overlaid (paper Fig. 5) as <dir>/<image name>_attention.png.")
    flags.DEFINE_integer("max_attention_maps", 8, "export.predict: at most this many taps per overlay, evenly "
                         "spaced from the first to the last (0 = all).", lower_bound=0)


def bounds_from_flags():
    """The per-format bounds of ``daaa_tf.serving.parity.default_bounds`` from the flags."""
    from daaa_tf.serving.parity import default_bounds

    return default_bounds(saved_model_max_delta=FLAGS.saved_model_max_delta,
                          float_max_delta=FLAGS.float_max_delta,
                          dynamic_min_agreement=FLAGS.dynamic_min_agreement,
                          dynamic_max_accuracy_drop=FLAGS.dynamic_max_accuracy_drop,
                          int8_min_agreement=FLAGS.int8_min_agreement,
                          int8_max_accuracy_drop=FLAGS.int8_max_accuracy_drop)
