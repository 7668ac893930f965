"""The whole method in one command.  python -m trainers.pipeline [--flagfile=configs/demo.flags] [--seeds=3]

With no flags it runs the embedded demo (MNIST digits -> MNIST-M-style digits shipped in PyPI packages) end
to end: source network, CycleGAN and translated pair shards, DAAA adaptation, export; then writes the report
(results.md + plots, see trainers.report) and prints it. Completed stages are skipped on a rerun.

Exit status: 0; 2 for bad input or a failed stage (one error line); 3 when an exported format is outside its
parity bounds: that format is not installed, everything else is done, the report is written, and the last
line names the failed formats (rerunning after relaxing a bound redoes only those).
"""

import os
import sys

from absl import flags

from daaa_tf import io
from daaa_tf.report.tables import make_report
from daaa_tf.stages import pipeline as pl
from trainers import flags as f

FLAGS = flags.FLAGS


def main(argv):
    del argv
    os.makedirs(FLAGS.run_dir, exist_ok=True)
    flagfile = os.path.join(FLAGS.run_dir, "pipeline.flags")
    FLAGS.append_flags_into_file(flagfile + ".tmp")
    os.replace(flagfile + ".tmp", flagfile)
    variants = []
    for v in FLAGS.variants:
        variants.extend(pl.TABLE1 if v == "table1" else [v])
    seeds = tuple(range(FLAGS.seed, FLAGS.seed + FLAGS.seeds))
    stages = pl.plan(FLAGS.run_dir, tuple(dict.fromkeys(variants)), seeds, FLAGS.export, FLAGS.revgrad)
    times = pl.run(stages, flagfile)
    failed = pl.failed_exports(FLAGS.run_dir) if FLAGS.export else []
    io.write_json(os.path.join(FLAGS.run_dir, "pipeline.json"), {"stage_seconds": times, "export_failed": failed})
    make_report(FLAGS.run_dir)
    with open(os.path.join(FLAGS.run_dir, "results.md")) as fh:
        print("\n" + fh.read())
    print(f"files: {os.path.abspath(FLAGS.run_dir)}  (TensorBoard: tensorboard --logdir {FLAGS.run_dir})",
          flush=True)
    if failed:
        print(pl.failure_line(FLAGS.run_dir, failed), file=sys.stderr)
        return pl.PARITY_FAILED_EXIT


if __name__ == "__main__":
    f.define_all()
    f.run_main(main)
