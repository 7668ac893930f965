"""The whole method in one command.  python -m trainers.pipeline [--flagfile=configs/demo.flags] [--seeds=3]

With no flags it runs the embedded demo (MNIST digits -> MNIST-M-style digits shipped in PyPI packages) end
to end in this process: source network, CycleGAN and translated pair shards, DAAA adaptation (--variants, see
daaa_tf.experiments), optional RevGrad, export; then writes the report (results.md + plots, see
trainers.report) and prints it. Completed stages are skipped on a rerun.

Exit status: 0; 2 for bad input or a failed stage (one error line); 3 when an exported format is outside its
parity bounds: that format is not installed, everything else is done, the report is written, and the last
line names the failed formats (rerunning after relaxing a bound redoes only those).
"""

import os
import sys

from daaa_tf import config, io
from trainers import flags as f


def main(argv):
    del argv
    from daaa_tf.stages import pipeline as pl

    cfg = f.from_flags(config.PipelineConfig)
    results = pl.run_pipeline(f.values(), cfg)
    print("\n" + io.read_text(results))
    print(f"files: {io.absolute(cfg.run_dir)}  (TensorBoard: tensorboard --logdir {cfg.run_dir})",
          flush=True)
    failed = io.read_json(os.path.join(cfg.run_dir, "pipeline.json"), {}).get("export_failed", [])
    if failed:
        export_dir = f.from_flags(config.ExportConfig).export_dir
        print(pl.failure_line(cfg.run_dir, failed, export_dir), file=sys.stderr)
        return pl.PARITY_FAILED_EXIT


if __name__ == "__main__":
    f.define_flags(config.PipelineConfig, config.SourceConfig, config.CycleGANConfig, config.AdaptConfig,
                   config.RevGradConfig, config.ExportConfig)
    f.run_main(main)
