"""Exports a trained classifier as a SavedModel with uint8 signatures and checks it against Keras.

  python -m export.saved_model --run_dir=runs/demo [--model=PATH.keras] [--export_dir=DIR] [--overwrite]

Writes <export_dir>/saved_model/ (serving_default, attention, metadata), labels.txt, parity.json; prints the
parity table and exits with status 3 when the SavedModel is outside its bound (it is then not installed). An
existing export is refused unless --overwrite, except one that parity.json shows was exported from the same
model (sha256) within its bounds: that is kept (so a rerun of the pipeline is a no-op). Bad input (no model,
a foreign existing export) gives one error line and status 2. The work is ``daaa_tf.stages.export``.
"""

from daaa_tf import UserError
from daaa_tf.config import ExportConfig
from trainers import flags as tflags


def define_flags():
    """The export stage's flags (idempotent; tests call it before parsing a command line themselves)."""
    return tflags.define_flags(ExportConfig)


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]} (all options are --flags)")
    from daaa_tf.stages.export import export_model

    return export_model(tflags.from_flags(ExportConfig), ["saved_model"])


if __name__ == "__main__":
    tflags.define_flags(ExportConfig)
    tflags.run_main(main)
