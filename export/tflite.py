"""Exports a trained classifier to TFLite (float32, dynamic-range, full-int8) and checks each against Keras.

  python -m export.tflite --run_dir=runs/demo [--tflite_formats=float,dynamic,int8] [--num_calibration=200]

Writes <export_dir>/model_{float,dynamic,int8}.tflite (uint8 image input, serving_default signature),
labels.txt and parity.json; prints the parity table and exits with status 3 when a variant is outside its
bounds (that variant is then not installed; the others are). int8 is calibrated on target training images.
"""

from absl import flags

from export.saved_model import define_flags, run
from trainers import flags as tflags

FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments {argv[1:]} (all options are --flags)")
    from daaa_tf.serving.contract import TFLITE_MODES

    formats = [f.strip() for f in FLAGS.tflite_formats if f.strip()]
    bad = [f for f in formats if f not in TFLITE_MODES]
    if bad or not formats:
        raise ValueError(f"--tflite_formats: expected some of {','.join(TFLITE_MODES)}, got {FLAGS.tflite_formats}")
    return run(formats)


if __name__ == "__main__":
    define_flags()
    tflags.run_main(main)
