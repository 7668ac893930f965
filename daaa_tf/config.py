"""Every setting of every stage, once: one dataclass per stage whose fields carry default, help text and bounds.

The command-line flags are generated from these fields (``trainers.flags.define_flags``) and configs are built
from flag values with ``build`` (see ``daaa_tf.settings`` for the field metadata). The defaults are the embedded
demo's; ``configs/demo.flags`` repeats them. Where a dataclass default used to disagree with its flag, the flag's
(what users ran) was kept.
"""

import dataclasses

from daaa_tf.settings import (  # noqa: F401  (build, flag_lines, ... are part of this module's API)
    DIGIT_WIDTHS,
    SHARED,
    _augment_streams,
    _digit_widths,
    _noise_shape,
    _positive,
    _profile_steps,
    _proportions,
    _Stage,
    _streams,
    _tflite_formats,
    _variants,
    augment_problem,
    build,
    convert,
    flag_fields,
    flag_lines,
    flag_name,
    internal,
    problem,
    setting,
    shared,
    stage_precision,
)

_config = dataclasses.dataclass(kw_only=True)


@_config
class SourceConfig(_Stage):
    """Stage 1 (trainers.source): the source network on the labelled source domain."""
    run_dir: str = shared("run_dir")
    out_dir: str = internal("", run_path="source")
    source: str = shared("source")
    target: str = shared("target")
    arch: str = shared("arch")
    image_size: int = shared("image_size")
    weights: str = shared("weights")
    attention_layers: str = shared("attention_layers")
    digit_widths: tuple = setting(DIGIT_WIDTHS, "Widths of the digit CNN's three feature convs (the paper fixes "
                                  "four convs, not their widths). Later stages read them from the source "
                                  "network. Ignored by ResNet-50.", item=int, check=_digit_widths)
    epochs: int = setting(8, "Source-network training epochs.", flag="source_epochs", lower=1)
    batch_size: int = setting(64, "Source-network batch size.", flag="source_batch_size", lower=1)
    optimizer: str = setting("adam", "Source-network optimizer.", flag="source_optimizer", choices=["adam", "sgd"])
    lr: float = setting(1e-3, "Source-network learning rate.", flag="source_lr", lower=0.0)
    overwrite: bool = shared("overwrite")
    seed: int = shared("seed")
    strategy: str = shared("strategy")
    precision: str = shared("precision")
    eval_batch_size: int = shared("eval_batch_size")
    profile_steps: tuple = shared("profile_steps")


@_config
class CycleGANConfig(_Stage):
    """Stage 2 (trainers.cyclegan): adversarial data pairing (paper 3.1) and the translated pair shards.

    The model fields (widths, losses, optimizer) are read by ``daaa_tf.method.cyclegan.build_cyclegan``; the
    defaults are the demo's small networks, the MNIST and Office-31 recipes in configs/ set larger ones."""
    run_dir: str = shared("run_dir")
    out_dir: str = internal("", run_path="cyclegan")
    pairs_dir: str = shared("pairs_dir")
    source: str = shared("source")
    target: str = shared("target")
    image_size: int = shared("image_size")
    steps: int = setting(1000, "CycleGAN training steps (one step updates G^ST, G^TS, D^S, D^T once).",
                         flag="cyclegan_steps", lower=0)
    batch_size: int = setting(16, "CycleGAN global batch size (per domain).", flag="cyclegan_batch_size", lower=1)
    steps_per_epoch: int = setting(100, "Steps per CycleGAN epoch: a checkpoint (the resume point), a sample grid "
                                   "and a metrics.json update after each.", flag="cyclegan_steps_per_epoch", lower=1)
    gen_width: int = setting(16, "k of the ResNet generator (c7s1-k, d2k, d4k, R4k, u2k, uk).", lower=1)
    gen_blocks: int = setting(3, "Residual blocks of the generator (digits 3-6, Office-31 9).", lower=0)
    upsample: str = setting("resize", "Generator upsampling: nearest resize + 3x3 conv (no checkerboard) or "
                            "stride-2 transposed conv (original).", flag="cyclegan_upsample",
                            choices=["resize", "transpose"])
    disc_width: int = setting(32, "Width of the first PatchGAN layer.", lower=1)
    disc_layers: int = setting(2, "Stride-2 PatchGAN layers (3 = 70x70 patches at 256 px).", lower=1)
    gan_loss: str = setting("lsgan", "GAN loss: least squares (CycleGAN default) or the log form of Eq. 1.",
                            choices=["lsgan", "bce"])
    cycle_weight: float = setting(10.0, "lambda of Eq. 3 (cycle consistency weight).", lower=0.0, upper=1000.0)
    identity_weight: float = setting(0.0, "Weight of CycleGAN's identity loss |G^ST(x_t) - x_t|_1 + "
                                     "|G^TS(x_s) - x_s|_1 (0 = off; the CycleGAN paper uses lambda/2).",
                                     lower=0.0, upper=1000.0)
    semantic_weight: float = setting(0.0, "Beyond the paper: weight of CyCADA's semantic consistency "
                                     "CE(f_S(G(x)), argmax f_S(x)) with the frozen source network f_S "
                                     "(--source_model); 0 = off (the paper).", lower=0.0, upper=1000.0)
    source_model: str = shared("source_model")  # f_S of --semantic_weight (read only when that is > 0)
    arch: str = shared("arch")  # f_S's architecture (its input preprocessing)
    noise_shape: tuple = setting((), "Beyond the paper: G^ST also takes N(0, 1) noise of shape h,w,c (resized onto "
                                 "the image) and a target encoder learns the latent cycle, so synthetic targets "
                                 "vary as real ones do (4,4,8 on digits); empty = the paper's G^ST.", item=int,
                                 check=_noise_shape)
    latent_weight: float = setting(1.0, "Weight of the latent cycle |z - E(G^ST(x_s, z))| (with --noise_shape).",
                                   lower=0.0, upper=1000.0)
    pool_size: int = setting(50, "Past fakes kept per discriminator (0 = no pool).", lower=0, upper=1000)
    lr: float = setting(4e-4, "Adam learning rate of all four networks.", flag="cyclegan_lr", lower=0.0)
    beta1: float = setting(0.5, "Adam beta_1 of all four networks.", flag="cyclegan_beta1", lower=0.0, upper=1.0)
    lr_decay: float = setting(1.0, "Fraction of --cyclegan_steps at a constant LR, then linear to 0 at the last "
                              "step (CycleGAN: 0.5); 1 = constant.", flag="cyclegan_lr_decay", lower=0.0, upper=1.0)
    translate_batch_size: int = setting(256, "Batch size when translating the training sets.", lower=1)
    shard_size: int = setting(10000, "Records per pair shard.", lower=1)
    precision: str = stage_precision("auto", "cyclegan_precision", "auto: mixed_bfloat16 where bfloat16 is "
                                      "native (1.5x faster on an AMX CPU, stable), else float32.")
    on_size_mismatch: str = setting("resize", "Source/target images that are not image_size x image_size x 3: "
                                    "resize (and convert to RGB) them, or stop with an error.",
                                    choices=["resize", "error"])
    overwrite: bool = shared("overwrite")
    seed: int = shared("seed")
    strategy: str = shared("strategy")
    profile_steps: tuple = shared("profile_steps")


@_config
class AdaptConfig(_Stage):
    """Stage 3 (trainers.adapt): DAAA, L_CE + L_EM + beta * L_AT (Eq. 13) from the CycleGAN pair shards."""
    run_dir: str = shared("run_dir")
    out_dir: str = shared("adapt_dir", run_path="adapt")
    source_model: str = shared("source_model")
    pairs_dir: str = shared("pairs_dir")
    target: str = shared("target")
    arch: str = shared("arch")
    image_size: int = shared("image_size")
    attention_layers: str = shared("attention_layers")
    batch_size: int = shared("batch_size")
    proportions: tuple = setting((0.35, 0.15, 0.35, 0.15), "Batch proportions of x_s, x~t, x_t, x~s (sum to 1).",
                                 item=float, check=_proportions)
    streams: tuple = setting(("s", "tf", "t", "sf"), "Active streams: s (real source), tf (synthetic target), "
                             "t (real target, L_EM), sf (synthetic source, L_EM). Table 1: s | tf | s,tf | "
                             "s,tf,t,sf.", item=str, check=_streams)
    augment_streams: tuple = setting((), "Beyond the paper: colour-augment these streams' target-net inputs (s, "
                                     "tf, t, sf); with t, M_post's posterior of the clean x_t labels its augmented "
                                     "view (target consistency for L_EM). Empty = the paper.", item=str,
                                     check=_augment_streams)
    augment_cutout: float = setting(0.0, "Beyond the paper, with --augment_streams: also grey out one square of "
                                    "this fraction of the image side per augmented image (positions elsewhere "
                                    "unchanged). 0 = colour only.", lower=0.0, upper=1.0)
    augment_shift: int = setting(0, "Beyond the paper, with --augment_streams and --beta=0: also translate each "
                                 "augmented image by up to this many pixels along each axis (uniform integers, "
                                 "border pixels repeated). 0 = no translation.", lower=0)
    beta: float = setting(1.0, "Weight of L_AT in Eq. 13 (0 = 'wo L_AT').", lower=0.0)
    attention_criterion: str = setting("l2", "Alignment criterion (Table 4).", choices=["l2", "l1", "mmd", "jmmd"])
    threshold: float = setting(0.95, "p_t: keep target samples whose max posterior >= p_t (0 = EM-B).",
                               lower=0.0, upper=1.0)
    sync_every: int = setting(150, "N of Eq. 11: copy the target net into M_post every N steps (1 = EM-A, "
                              "synchronous).", lower=1)
    restart_lr: bool = setting(True, "Restart the LR schedule after each M_post sync (false = EM-C).")
    optimizer: str = shared("optimizer")
    lr: float = shared("lr")
    lr_alpha: float = shared("lr_alpha")
    lr_power: float = shared("lr_power")
    head_lr_mult: float = shared("head_lr_mult")
    epochs: int = shared("epochs")
    steps_per_epoch: int = shared("steps_per_epoch")
    overwrite: bool = shared("overwrite")
    seed: int = shared("seed")
    strategy: str = shared("strategy")
    precision: str = stage_precision("", "adapt_precision", "mixed_bfloat16 made the DAAA step 2.3x faster on an "
                                      "AMX CPU at the same accuracy, and 10x slower on an AVX2 CPU "
                                      "(docs/benchmark.md): auto picks it only where bfloat16 is native.")
    eval_batch_size: int = shared("eval_batch_size")
    log_every: int = shared("log_every")
    profile_steps: tuple = shared("profile_steps")
    num_attention_images: int = internal(6)


@_config
class RevGradConfig(_Stage):
    """The RevGrad / DANN baseline (trainers.revgrad); reuses the adaptation stage's shared settings."""
    run_dir: str = shared("run_dir")
    out_dir: str = shared("adapt_dir", run_path="variants/RevGrad/seed{seed}")
    source_model: str = shared("source_model")
    source: str = shared("source")
    target: str = shared("target")
    arch: str = shared("arch")
    image_size: int = shared("image_size")
    attention_layers: str = shared("attention_layers")
    batch_size: int = shared("batch_size")
    optimizer: str = setting("sgd", "RevGrad optimizer ('' = --optimizer). Ganin & Lempitsky: sgd (momentum 0.9) "
                             "with --revgrad_lr=0.01; on the demo Adam 1e-3 (the digits --optimizer) made the "
                             "adversarial game diverge.", flag="revgrad_optimizer", choices=["", "adam", "sgd"],
                             fallback="optimizer")
    lr: float = setting(0.01, "RevGrad eta0 (0 = --lr).", flag="revgrad_lr", lower=0.0, fallback="lr")
    lr_alpha: float = shared("lr_alpha")
    lr_power: float = shared("lr_power")
    head_lr_mult: float = shared("head_lr_mult")
    epochs: int = shared("epochs")
    steps_per_epoch: int = shared("steps_per_epoch")
    hidden: tuple = setting((), "Hidden widths of the RevGrad domain classifier (empty = Ganin & Lempitsky's: 100 "
                            "for digit_cnn, 1024,1024 for resnet50).", flag="revgrad_hidden", item=int,
                            check=_positive)
    dropout: float = setting(0.0, "Dropout after each hidden layer of the domain classifier (Ganin & Lempitsky "
                             "used 0.5 on Office).", flag="revgrad_dropout", lower=0.0, upper=0.99)
    gamma: float = setting(10.0, "gamma of lambda_p = 2 / (1 + exp(-gamma p)) - 1.", flag="revgrad_gamma",
                           lower=0.0)
    domain_weight: float = setting(1.0, "Weight of the domain-classifier loss (the reversal still scales the "
                                   "feature gradient by lambda_p).", flag="revgrad_weight", lower=0.0)
    overwrite: bool = shared("overwrite")
    seed: int = shared("seed")
    strategy: str = shared("strategy")
    precision: str = shared("precision")
    eval_batch_size: int = shared("eval_batch_size")
    log_every: int = shared("log_every")
    profile_steps: tuple = shared("profile_steps")


@_config
class ExportConfig(_Stage):
    """Export (export.saved_model, export.tflite): bounds are checked against the Keras model on the target test
    set."""
    run_dir: str = shared("run_dir")
    model: str = shared("model")
    export_dir: str = shared("export_dir")
    target: str = shared("target")
    arch: str = shared("arch")
    image_size: int = shared("image_size")
    seed: int = shared("seed")
    overwrite: bool = shared("overwrite")
    tflite_formats: tuple = setting(("float", "dynamic", "int8"), "export.tflite: variants to write: float "
                                    "(float32), dynamic (dynamic-range int8 weights), int8 (full integer).",
                                    item=str, check=_tflite_formats)
    num_calibration: int = setting(200, "int8: representative images drawn from the target training set.",
                                   lower=0)
    num_parity: int = setting(0, "Target test images used for parity (0 = all).", lower=0)
    enforce_bounds: bool = setting(True, "A format outside its bounds is not installed and the command exits "
                                   "with status 3 (the pipeline then still writes its report). With false it is "
                                   "installed anyway (parity.json still says FAIL, the status is still 3).")
    saved_model_max_delta: float = setting(1e-5, "SavedModel: max |Δ probability| vs Keras.")
    float_max_delta: float = setting(1e-4, "TFLite float: max |Δ probability| vs Keras.")
    dynamic_min_agreement: float = setting(0.98, "TFLite dynamic-range: min top-1 agreement with Keras (its max "
                                           "|Δ probability| is reported, not bounded; see "
                                           "daaa_tf.serving.parity).")
    dynamic_max_accuracy_drop: float = setting(1.0, "TFLite dynamic-range: max target-test accuracy drop vs "
                                               "Keras, in percentage points.")
    int8_min_agreement: float = setting(0.93, "TFLite int8: min top-1 agreement with Keras.")
    int8_max_accuracy_drop: float = setting(2.0, "TFLite int8: max target-test accuracy drop vs Keras, in "
                                            "percentage points (int8 flips near-ties; see "
                                            "daaa_tf.serving.parity.default_bounds).")

    def bounds(self):
        """The per-format bounds of ``daaa_tf.serving.parity.default_bounds``."""
        from daaa_tf.serving.parity import default_bounds

        names = ("saved_model_max_delta", "float_max_delta", "dynamic_min_agreement", "dynamic_max_accuracy_drop",
                 "int8_min_agreement", "int8_max_accuracy_drop")
        return default_bounds(**{n: getattr(self, n) for n in names})


@_config
class PredictConfig(_Stage):
    """export.predict: classify images with an exported model."""
    run_dir: str = shared("run_dir")
    model: str = shared("model")
    export_dir: str = shared("export_dir")
    attention_out: str = setting("", "export.predict: write each image with its attention maps overlaid (paper "
                                 "Fig. 5) as <dir>/<image name>_attention.png.", path="file")
    max_attention_maps: int = setting(8, "export.predict: at most this many taps per overlay, evenly spaced from "
                                      "the first to the last (0 = all).", lower=0)


@_config
class ReportConfig(_Stage):
    """trainers.report: results.md, results.json and plots from a run directory."""
    run_dir: str = shared("run_dir")
    report_dir: str = setting("", "Where results.md, results.json and the plots go (default: the run "
                              "directory).", path="file")
    report_images: int = setting(6, "Target test images in the attention-map grid.", lower=1)


@_config
class PipelineConfig(_Stage):
    """trainers.pipeline: which adaptation variants, seeds and extra stages to run (see daaa_tf.experiments)."""
    run_dir: str = shared("run_dir")
    variants: tuple = setting(("full",), "Adaptation variants to run (see daaa_tf.experiments.VARIANTS); "
                              "'table1', 'table3', 'table4' = all rows of that table; 'beyond' = the opt-in "
                              "additions.", item=str, check=_variants)
    seed: int = shared("seed")
    seeds: int = setting(1, "Number of adaptation seeds per variant (seed, seed+1, ...).", lower=1)
    revgrad: bool = setting(False, "Also run the RevGrad/DANN baseline.")
    export: bool = setting(True, "Export the adapted model (SavedModel + TFLite) at the end.")


STAGES = (SourceConfig, CycleGANConfig, AdaptConfig, RevGradConfig, ExportConfig, PredictConfig, ReportConfig,
          PipelineConfig)


def all_flags():
    """{flag name: field} over every stage: the project's flags."""
    return {name: f for cls in STAGES for name, f in flag_fields(cls)}
