"""Flags shared by the entry points. Each entry point defines its own flags beside these.

Library code never reads FLAGS: entry points pass plain values into daaa_tf.
"""

import os
import sys

from absl import flags, logging

FLAGS = flags.FLAGS


def define_common():
    """Flags every stage has: where runs go, which data, which architecture, seed, strategy, precision."""
    flags.DEFINE_string("run_dir", "runs/demo", "Experiment directory; each stage writes a sub-directory.")
    flags.DEFINE_string("source", "demo", "Source domain: demo | mnist:DIR | mnist_m:DIR | office31:DIR/amazon "
                        "| tfds:NAME.")
    flags.DEFINE_string("target", "demo", "Target domain (same forms as --source).")
    flags.DEFINE_enum("arch", "digit_cnn", ["digit_cnn", "resnet50"], "Classifier architecture.")
    flags.DEFINE_integer("image_size", 32, "Square image size fed to the networks.", lower_bound=8)
    flags.DEFINE_string("weights", "none", "ResNet-50 initial weights: imagenet | none | path to a weights file.")
    flags.DEFINE_string("attention_layers", "all_conv", "ResNet-50 taps: all_conv | blocks | comma-separated "
                        "layer names (the digit CNN always taps its three feature convs).")
    flags.DEFINE_integer("seed", 0, "Random seed.", lower_bound=0)
    flags.DEFINE_enum("strategy", "auto", ["auto", "default", "mirrored", "multi_worker", "tpu"],
                      "tf.distribute strategy.")
    flags.DEFINE_enum("precision", "float32", ["float32", "mixed_bfloat16", "mixed_float16"],
                      "Keras dtype policy.")


def stage_dir(name):
    """runs/<exp>/<name>, created."""
    path = os.path.join(FLAGS.run_dir, name)
    os.makedirs(path, exist_ok=True)
    return path


def save_flags(directory):
    """Writes the flags of this run to ``directory``/flags.txt (replay with --flagfile)."""
    path = os.path.join(directory, "flags.txt")
    FLAGS.append_flags_into_file(path + ".tmp")
    os.replace(path + ".tmp", path)
    return path


def fail(message):
    """Ends an entry point with one clear line on stderr and exit status 2 (no traceback)."""
    logging.error(message)
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def run_main(main):
    """absl.app.run(main) turning expected user errors into one line instead of a traceback."""
    from absl import app

    def wrapped(argv):
        try:
            return main(argv)
        except (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError) as e:
            fail(str(e))

    app.run(wrapped)
