"""Exports a trained classifier to TFLite (float32, dynamic-range, full-int8) and checks each against Keras.

  python -m export.tflite --run_dir=runs/demo [--tflite_formats=float,dynamic,int8] [--num_calibration=200]

Writes <export_dir>/model_{float,dynamic,int8}.tflite (uint8 image input, serving_default signature),
labels.txt and parity.json; prints the parity table and exits with status 3 when a variant is outside its
bounds (that variant is then not installed; the others are). int8 is calibrated on target training images.
"""

from daaa_tf import UserError
from daaa_tf.config import ExportConfig
from trainers import flags as tflags


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]} (all options are --flags)")
    from daaa_tf.stages.export import export_model

    cfg = tflags.from_flags(ExportConfig)
    return export_model(cfg, list(cfg.tflite_formats))


if __name__ == "__main__":
    tflags.define_flags(ExportConfig)
    tflags.run_main(main)
