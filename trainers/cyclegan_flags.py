"""Flags of the CycleGAN stage (trainers.cyclegan): adversarial data pairing, paper section 3.1.

``define_cyclegan_flags()`` is idempotent, so ``trainers.flags.define_all()`` may call it too.
"""

from absl import flags

FLAGS = flags.FLAGS

MAX_CYCLE_WEIGHT = 1000.0
MAX_POOL_SIZE = 1000


def define_cyclegan_flags():
    """Every flag of the CycleGAN stage (names are prefixed or distinct from the adaptation stage's).

    The defaults are the embedded demo's (configs/demo.flags); configs/mnist_to_mnistm.flags and the Office-31
    configs set larger networks.
    """
    if "cyclegan_steps" in FLAGS:
        return
    flags.DEFINE_integer("cyclegan_steps", 1000, "CycleGAN training steps (one step updates G^ST, G^TS, D^S, "
                         "D^T once).", lower_bound=0)
    flags.DEFINE_integer("cyclegan_batch_size", 16, "CycleGAN global batch size (per domain).", lower_bound=1)
    flags.DEFINE_integer("cyclegan_steps_per_epoch", 100, "Steps per CycleGAN epoch: a checkpoint (the resume "
                         "point), a sample grid and a metrics.json update after each.", lower_bound=1)
    flags.DEFINE_integer("gen_width", 16, "k of the ResNet generator (c7s1-k, d2k, d4k, R4k, u2k, uk).",
                         lower_bound=1)
    flags.DEFINE_integer("gen_blocks", 3, "Residual blocks of the generator (digits 3-6, Office-31 9).",
                         lower_bound=0)
    flags.DEFINE_enum("cyclegan_upsample", "resize", ["resize", "transpose"], "Generator upsampling: "
                      "nearest resize + 3x3 conv (no checkerboard) or stride-2 transposed conv (original).")
    flags.DEFINE_integer("disc_width", 32, "Width of the first PatchGAN layer.", lower_bound=1)
    flags.DEFINE_integer("disc_layers", 2, "Stride-2 PatchGAN layers (3 = 70x70 patches at 256 px).",
                         lower_bound=1)
    flags.DEFINE_enum("gan_loss", "lsgan", ["lsgan", "bce"], "GAN loss: least squares (CycleGAN default) or "
                      "the log form of Eq. 1.")
    flags.DEFINE_float("cycle_weight", 10.0, "lambda of Eq. 3 (cycle consistency weight).", lower_bound=0.0,
                       upper_bound=MAX_CYCLE_WEIGHT)
    flags.DEFINE_float("identity_weight", 0.0, "Weight of CycleGAN's identity loss |G^ST(x_t) - x_t|_1 + "
                       "|G^TS(x_s) - x_s|_1 (0 = off; the CycleGAN paper uses lambda/2).", lower_bound=0.0,
                       upper_bound=MAX_CYCLE_WEIGHT)
    flags.DEFINE_float("semantic_weight", 0.0, "Beyond the paper: weight of CyCADA's semantic consistency "
                       "CE(f_S(G(x)), argmax f_S(x)) with the frozen source network f_S (--source_model); "
                       "0 = off (the paper).", lower_bound=0.0, upper_bound=MAX_CYCLE_WEIGHT)
    flags.DEFINE_integer("pool_size", 50, "Past fakes kept per discriminator (0 = no pool).", lower_bound=0,
                         upper_bound=MAX_POOL_SIZE)
    flags.DEFINE_float("cyclegan_lr", 4e-4, "Adam learning rate of all four networks.", lower_bound=0.0)
    flags.DEFINE_float("cyclegan_beta1", 0.5, "Adam beta_1 of all four networks.", lower_bound=0.0,
                       upper_bound=1.0)
    flags.DEFINE_integer("translate_batch_size", 256, "Batch size when translating the training sets.",
                         lower_bound=1)
    flags.DEFINE_integer("shard_size", 10000, "Records per pair shard.", lower_bound=1)
    flags.DEFINE_enum("cyclegan_precision", "mixed_bfloat16", ["", "float32", "mixed_bfloat16", "mixed_float16"],
                      "Dtype policy "
                      "of this stage only (empty = --precision); mixed_bfloat16 was 1.5x faster on CPU, stable.")
    flags.DEFINE_enum("on_size_mismatch", "resize", ["resize", "error"], "Source/target images that are not "
                      "image_size x image_size x 3: resize (and convert to RGB) them, or stop with an error.")
