"""Exports a trained classifier as a SavedModel with uint8 signatures and checks it against Keras.

  python -m export.saved_model --run_dir=runs/demo [--model=PATH.keras] [--export_dir=DIR] [--overwrite]

Writes <export_dir>/saved_model/ (serving_default, attention, metadata), labels.txt, parity.json; prints the
parity table and exits with status 3 when the SavedModel is outside its bound (it is then not installed). An
existing export is refused unless --overwrite, except one that parity.json shows was exported from the same
model (sha256) within its bounds: that is kept (so a rerun of the pipeline is a no-op). Bad input (no model,
a foreign existing export) gives one error line and status 2.
"""

import os
import sys

from absl import flags

from daaa_tf.io import read_json
from export.flags import bounds_from_flags, define_export_flags
from trainers import flags as tflags

FLAGS = flags.FLAGS


def define_flags():
    """Every stage's flags (one flagfile in configs/ serves every entry point); idempotent."""
    if "run_dir" not in FLAGS:
        tflags.define_all()
    define_export_flags()


def _say(msg):
    print(msg, flush=True)


def load_target(spec, image_size, num_parity, num_calibration, seed):
    """(parity images, labels, calibration images or None, class names) from the target domain."""
    from daaa_tf.data import load_domain
    from daaa_tf.data.pipelines import take_examples

    if image_size[0] != image_size[1]:
        raise ValueError(f"the model takes {image_size[0]}x{image_size[1]} images; domains are square")
    test = load_domain(spec, "test", image_size[0], role="target")
    images, labels = take_examples(test.dataset(), num_parity)
    calibration = None
    if num_calibration:
        train = load_domain(spec, "train", image_size[0], role="target")
        calibration, _ = take_examples(train.dataset(), num_calibration, shuffle_seed=seed)
    return images, labels, calibration, list(test.class_names)


def run(formats):
    """Shared body of export.saved_model and export.tflite: export ``formats``, print parity, exit status."""
    from daaa_tf.io import sha256_file
    from daaa_tf.models import load_classifier, model_spec
    from daaa_tf.serving import writer as exporting
    from daaa_tf.serving.contract import PARITY_FILE, artifact_path, default_model_path
    from daaa_tf.serving.parity import PARITY_FAILED_EXIT, format_table, up_to_date

    model_path = FLAGS.model or default_model_path(FLAGS.run_dir)
    export_dir = FLAGS.export_dir or os.path.join(FLAGS.run_dir, "export")
    model = load_classifier(model_path)
    spec = model_spec(model)
    if spec["arch"] != FLAGS.arch:
        _say(f"note: --arch={FLAGS.arch} but {model_path} is a {spec['arch']}; using {spec['arch']}")
    if spec["image_size"] != (FLAGS.image_size, FLAGS.image_size):
        _say(f"note: --image_size={FLAGS.image_size} but the model takes {spec['image_size']}; using the model's")
    sha256 = sha256_file(model_path)
    todo = []
    for fmt in formats:  # refuse before any slow work
        path = artifact_path(export_dir, fmt)
        if os.path.exists(path) and not FLAGS.overwrite:
            if not up_to_date(export_dir, fmt, sha256):
                raise ValueError(f"{path!r} already exists and is not a checked export of {model_path} "
                                 "(pass --overwrite to replace it)")
            _say(f"{path}: up to date (same model, within its bounds), kept; --overwrite redoes it")
            continue
        todo.append(fmt)
    if not todo:
        print(format_table(read_json(os.path.join(export_dir, PARITY_FILE))))
        return 0
    formats = todo
    num_calibration = FLAGS.num_calibration if "int8" in formats else 0
    if "int8" in formats and not num_calibration:
        raise ValueError("--num_calibration must be > 0 for the int8 TFLite model")
    _say(f"loading target {FLAGS.target!r} (test for parity, train for calibration)")
    images, labels, calibration, class_names = load_target(FLAGS.target, spec["image_size"], FLAGS.num_parity,
                                                           num_calibration, FLAGS.seed)
    if len(class_names) != spec["num_classes"]:
        _say(f"note: the target has {len(class_names)} classes, the model {spec['num_classes']}; "
             "labels.txt gets class indices")
        class_names = None
    info = {"model": os.path.abspath(model_path), "model_sha256": sha256,
            "target": FLAGS.target, "num_calibration": int(0 if calibration is None else len(calibration))}
    parity, failed = exporting.export_formats(
        model, export_dir, formats, images, labels, calibration_images=calibration, class_names=class_names,
        bounds=bounds_from_flags(), overwrite=FLAGS.overwrite, enforce_bounds=FLAGS.enforce_bounds,
        reference_info=info, log=_say)
    print(format_table(parity))
    print(f"wrote {os.path.join(export_dir, PARITY_FILE)}")
    if failed:
        kept = "not installed" if FLAGS.enforce_bounds else "installed anyway (--noenforce_bounds)"
        print(f"error: {', '.join(failed)} outside the parity bounds ({kept}); see the table above",
              file=sys.stderr)
        return PARITY_FAILED_EXIT
    return 0


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments {argv[1:]} (all options are --flags)")
    return run(["saved_model"])


if __name__ == "__main__":
    define_flags()
    tflags.run_main(main)
