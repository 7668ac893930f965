"""Stage 2: CycleGAN + translation into pair shards (paper section 3.1).

    python -m trainers.cyclegan --flagfile=configs/demo.flags

Trains G^ST, G^TS, D^S, D^T into <run_dir>/cyclegan (resumes from the last checkpoint when rerun), then
translates every source and target training image into <run_dir>/pairs (or --pairs_dir).
"""

from daaa_tf.config import CycleGANConfig
from trainers import flags as f


def main(argv):
    del argv
    from daaa_tf.stages.cyclegan import run_cyclegan

    cfg = f.from_flags(CycleGANConfig)
    run_cyclegan(cfg)


if __name__ == "__main__":
    f.define_flags(CycleGANConfig)
    f.run_main(main)
