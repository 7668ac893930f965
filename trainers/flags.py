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

    from daaa_tf import StageError

    def wrapped(argv):
        try:
            return main(argv)
        except (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError, StageError) as e:
            fail(str(e))

    def quiet(argv):
        # TF's checkpoint saver logs an INFO line per save into the progress bar; -v / --verbosity restores it.
        if not FLAGS["verbosity"].present:
            logging.set_verbosity(logging.WARNING)
        return wrapped(argv)

    app.run(quiet)


def define_source_flags():
    flags.DEFINE_integer("source_epochs", 8, "Source-network training epochs.", lower_bound=1)
    flags.DEFINE_integer("source_batch_size", 64, "Source-network batch size.", lower_bound=1)
    flags.DEFINE_enum("source_optimizer", "adam", ["adam", "sgd"], "Source-network optimizer.")
    flags.DEFINE_float("source_lr", 1e-3, "Source-network learning rate.", lower_bound=0.0)


def define_adapt_flags():
    flags.DEFINE_string("adapt_dir", "", "Output directory of the adaptation stage (default <run_dir>/adapt).")
    flags.DEFINE_string("source_model", "", "Frozen source network (default <run_dir>/source/model.keras).")
    flags.DEFINE_string("pairs_dir", "", "CycleGAN pair shards (default <run_dir>/pairs).")
    flags.DEFINE_integer("batch_size", 64, "Global batch size B of the adaptation step.", lower_bound=1)
    flags.DEFINE_list("proportions", ["0.35", "0.15", "0.35", "0.15"],
                      "Batch proportions of x_s, x~t, x_t, x~s (sum to 1).")
    flags.DEFINE_list("streams", ["s", "tf", "t", "sf"], "Active streams: s (real source), tf (synthetic "
                      "target), t (real target, L_EM), sf (synthetic source, L_EM). Table 1: s | tf | s,tf | "
                      "s,tf,t,sf.")
    flags.DEFINE_list("augment_streams", [], "Beyond the paper: colour-augment these streams' target-net "
                      "inputs (s, tf, t, sf); with t, M_post's posterior of the clean x_t labels its augmented "
                      "view (target consistency for L_EM). Empty = the paper.")
    flags.DEFINE_float("beta", 1.0, "Weight of L_AT in Eq. 13 (0 = 'wo L_AT').", lower_bound=0.0)
    flags.DEFINE_enum("attention_criterion", "l2", ["l2", "l1", "mmd", "jmmd"], "Alignment criterion (Table 4).")
    flags.DEFINE_float("threshold", 0.95, "p_t: keep target samples whose max posterior >= p_t (0 = EM-B).",
                       lower_bound=0.0, upper_bound=1.0)
    flags.DEFINE_integer("sync_every", 150, "N of Eq. 11: copy the target net into M_post every N steps "
                         "(1 = EM-A, synchronous).", lower_bound=1)
    flags.DEFINE_boolean("restart_lr", True, "Restart the LR schedule after each M_post sync (false = EM-C).")
    flags.DEFINE_enum("optimizer", "adam", ["adam", "sgd"], "Adaptation optimizer (digits: adam; Office: sgd).")
    flags.DEFINE_float("lr", 1e-3, "eta0 of eta = eta0 * (1 + alpha p)^-power.", lower_bound=0.0)
    flags.DEFINE_float("lr_alpha", 10.0, "alpha of the annealing schedule.", lower_bound=0.0)
    flags.DEFINE_float("lr_power", 0.75, "power of the annealing schedule.", lower_bound=0.0)
    flags.DEFINE_float("head_lr_mult", 1.0, "Gradient multiplier of the new head (JAN protocol: 10 with SGD).",
                       lower_bound=0.0)
    flags.DEFINE_integer("epochs", 10, "Adaptation epochs (target-test evaluation after each).", lower_bound=1)
    flags.DEFINE_integer("steps_per_epoch", 150, "Adaptation steps per epoch.", lower_bound=1)
    flags.DEFINE_integer("log_every", 10, "Write step scalars to TensorBoard every this many steps.",
                         lower_bound=1)
    flags.DEFINE_list("profile_steps", [], "Two step numbers 'start,stop' to profile with TensorBoard.")
    flags.DEFINE_integer("eval_batch_size", 256, "Evaluation batch size.", lower_bound=1)


def define_pipeline_flags():
    from daaa_tf.stages.pipeline import VARIANTS

    flags.DEFINE_list("variants", ["full"], f"Adaptation variants to run: {', '.join(VARIANTS)}; "
                      "'table1' = all Table-1 rows.")
    flags.DEFINE_integer("seeds", 1, "Number of adaptation seeds per variant (seed, seed+1, ...).", lower_bound=1)
    flags.DEFINE_boolean("revgrad", False, "Also run the RevGrad/DANN baseline.")
    flags.DEFINE_boolean("export", True, "Export the adapted model (SavedModel + TFLite) at the end.")


def define_all():
    """Every stage's flags, so one flagfile in configs/ serves every entry point."""
    from export.flags import define_export_flags
    from trainers.cyclegan_flags import define_cyclegan_flags
    from trainers.revgrad_flags import define_revgrad_flags

    define_common()
    define_source_flags()
    define_cyclegan_flags()
    define_adapt_flags()
    define_export_flags()
    define_revgrad_flags()
    define_pipeline_flags()


def path_or_default(value, *default_parts):
    return value or os.path.join(FLAGS.run_dir, *default_parts)
