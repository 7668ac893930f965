"""The export stage: a trained classifier -> SavedModel / TFLite files, each checked against Keras (parity).

``export_model(cfg, formats)`` is the body of ``python -m export.saved_model`` / ``export.tflite`` and of the
pipeline's export step. An existing export is refused unless ``cfg.overwrite``, except one that parity.json
shows was exported from the same model (sha256) within its bounds: that is kept (a rerun is a no-op).
"""

import os
import sys

from daaa_tf import UserError
from daaa_tf.io import read_json


def load_target(spec, image_size, num_parity, num_calibration, seed):
    """(parity images, labels, calibration images or None, class names) from the target domain."""
    from daaa_tf.data import load_domain
    from daaa_tf.data.pipelines import take_examples

    if image_size[0] != image_size[1]:
        raise UserError(f"the model takes {image_size[0]}x{image_size[1]} images; domains are square")
    test = load_domain(spec, "test", image_size[0], role="target")
    images, labels = take_examples(test.dataset(), num_parity)
    calibration = None
    if num_calibration:
        train = load_domain(spec, "train", image_size[0], role="target")
        calibration, _ = take_examples(train.dataset(), num_calibration, shuffle_seed=seed)
    return images, labels, calibration, list(test.class_names)


def _todo(cfg, formats, export_dir, model_path, sha256, log):
    """The formats still to export (refusing a foreign existing export before any slow work)."""
    from daaa_tf.serving.contract import artifact_path
    from daaa_tf.serving.parity import up_to_date

    todo = []
    for fmt in formats:
        path = artifact_path(export_dir, fmt)
        if os.path.exists(path) and not cfg.overwrite:
            if not up_to_date(export_dir, fmt, sha256):
                raise UserError(f"{path!r} already exists and is not a checked export of {model_path} "
                                "(pass --overwrite to replace it)")
            log(f"{path}: up to date (same model, within its bounds), kept; --overwrite redoes it")
            continue
        todo.append(fmt)
    return todo


def export_model(cfg, formats, log=None):
    """Exports ``formats`` of ``cfg.model`` (a ``daaa_tf.config.ExportConfig``; default the run's adapted model,
    else its source model), prints the parity table; returns the exit status: 0, or ``PARITY_FAILED_EXIT`` (3)
    when the export finished but left formats outside their bounds (those are not installed unless
    ``cfg.enforce_bounds`` is false; the pipeline reports them and goes on)."""
    from daaa_tf.io import sha256_file
    from daaa_tf.models import load_classifier, model_spec
    from daaa_tf.serving import writer
    from daaa_tf.serving.contract import PARITY_FILE, check_export_dir, default_model_path
    from daaa_tf.serving.parity import PARITY_FAILED_EXIT, format_table

    log = log or (lambda msg: print(msg, flush=True))
    check_export_dir(cfg.export_dir)  # a file, or a folder of the user's: refused before any slow work
    model_path = cfg.model or default_model_path(cfg.run_dir)
    model = load_classifier(model_path)
    spec = model_spec(model)
    if spec["arch"] != cfg.arch:
        log(f"note: --arch={cfg.arch} but {model_path} is a {spec['arch']}; using {spec['arch']}")
    if spec["image_size"] != (cfg.image_size, cfg.image_size):
        log(f"note: --image_size={cfg.image_size} but the model takes {spec['image_size']}; using the model's")
    sha256 = sha256_file(model_path)
    formats = _todo(cfg, formats, cfg.export_dir, model_path, sha256, log)
    if not formats:
        print(format_table(read_json(os.path.join(cfg.export_dir, PARITY_FILE))))
        return 0
    num_calibration = cfg.num_calibration if "int8" in formats else 0
    if "int8" in formats and not num_calibration:
        raise UserError("--num_calibration must be > 0 for the int8 TFLite model")
    log(f"loading target {cfg.target!r} (test for parity, train for calibration)")
    images, labels, calibration, class_names = load_target(cfg.target, spec["image_size"], cfg.num_parity,
                                                           num_calibration, cfg.seed)
    if len(class_names) != spec["num_classes"]:
        log(f"note: the target has {len(class_names)} classes, the model {spec['num_classes']}; "
            "labels.txt gets class indices")
        class_names = None
    info = {"model": os.path.abspath(model_path), "model_sha256": sha256,
            "target": cfg.target, "num_calibration": int(0 if calibration is None else len(calibration))}
    parity, failed = writer.export_formats(
        model, cfg.export_dir, formats, images, labels, calibration_images=calibration, class_names=class_names,
        bounds=cfg.bounds(), overwrite=cfg.overwrite, enforce_bounds=cfg.enforce_bounds, reference_info=info,
        log=log)
    print(format_table(parity))
    print(f"wrote {os.path.join(cfg.export_dir, PARITY_FILE)}")
    if failed:
        kept = "not installed" if cfg.enforce_bounds else "installed anyway (--noenforce_bounds)"
        print(f"error: {', '.join(failed)} outside the parity bounds ({kept}); see the table above",
              file=sys.stderr)
        return PARITY_FAILED_EXIT
    return 0
