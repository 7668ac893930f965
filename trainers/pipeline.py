"""The whole method in one command.  python -m trainers.pipeline [--flagfile=configs/demo.flags] [--seeds=3]

With no flags it runs the embedded demo (MNIST digits -> MNIST-M-style digits shipped in PyPI packages) end
to end in this process: source network, CycleGAN and translated pair shards, DAAA adaptation (--variants, see
daaa_tf.experiments), optional RevGrad, export; then writes the report (results.md + plots, see
trainers.report) and prints it. Completed stages are skipped on a rerun.
"""

import os

from daaa_tf import config
from trainers import flags as f


def main(argv):
    del argv
    from daaa_tf.stages.pipeline import run_pipeline

    cfg = f.from_flags(config.PipelineConfig)
    results = run_pipeline(f.values(), cfg)
    with open(results) as fh:
        print("\n" + fh.read())
    print(f"files: {os.path.abspath(cfg.run_dir)}  (TensorBoard: tensorboard --logdir {cfg.run_dir})")


if __name__ == "__main__":
    f.define_flags(config.PipelineConfig, config.SourceConfig, config.CycleGANConfig, config.AdaptConfig,
                   config.RevGradConfig, config.ExportConfig)
    f.run_main(main)
