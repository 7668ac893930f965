"""The machinery of ``daaa_tf.config``: fields that are flags, the settings several stages share, building a
checked config from flag values, and writing a config back as flags.

A field's flag is its name unless ``metadata["flag"]`` says otherwise (``CycleGANConfig.lr`` is
``--cyclegan_lr``). A setting several stages share (``--arch``, ``--lr``, ...) is declared once in ``SHARED`` and
each stage takes it with ``shared()``. ``build(Config, values, **overrides)`` makes a checked config from flag
values ({flag name: value}) plus field overrides (the experiment grid, ``daaa_tf.experiments``);
``flag_lines(cfg)`` writes it back as flags. Nothing here reads absl's parsed flag values.
"""

import dataclasses
import math
import os

from daaa_tf import UserError
from daaa_tf.batching import DEFAULT_PROPORTIONS, STREAMS, stream_counts  # noqa: F401 (re-exported)

PRECISIONS = ["auto", "float32", "mixed_bfloat16", "mixed_float16"]


def resolve_precision(value):
    """A precision flag's ``auto`` -> the policy for this machine (``daaa_tf.runtime.resolve_precision``), so that a
    config, its flags.txt and its fingerprint name the policy the run really used."""
    if value != "auto":
        return value
    from daaa_tf import runtime  # imports TensorFlow: only when a config asks for auto

    return runtime.resolve_precision(value)


def setting(default, help, flag=None, lower=None, upper=None, choices=None, item=None, check=None,
            run_path=None, fallback=None, path=None, resolve=None):
    """A field that is a flag. ``item``: element type of a tuple (a list flag). ``check(value)`` returns an error
    message or None. ``run_path``: an empty value means <run_dir>/run_path (formatted with the fields).
    ``fallback``: an empty value takes that (shared) flag's value. ``path``: "file" or "domain" (made absolute
    in flags.txt). ``resolve(value)``: the value the config keeps (after the fallback)."""
    return dataclasses.field(default=default, metadata=dict(
        help=help, flag=flag, lower=lower, upper=upper, choices=choices, item=item, check=check,
        run_path=run_path, fallback=fallback, path=path, resolve=resolve))


def stage_precision(default, flag, help):
    """A stage's own dtype policy: empty = --precision; auto resolved when the config is built."""
    return setting(default, f"Dtype policy of this stage only (empty = --precision); {help}", flag=flag,
                   choices=[""] + PRECISIONS, fallback="precision", resolve=resolve_precision)


def internal(default, run_path=None):
    """A field that is no flag (set by the stage that owns it, or derived from run_dir)."""
    return dataclasses.field(default=default, metadata={"run_path": run_path})


def _proportions(p):
    if len(p) != 4 or not all(math.isfinite(x) and x >= 0 for x in p) or abs(sum(p) - 1.0) > 1e-6:
        return "expected four finite non-negative numbers summing to 1 (x_s, x~t, x_t, x~s)"
    return None


def _profile_steps(s):
    if s and (len(s) != 2 or not 0 <= s[0] < s[1]):
        return "expected 'start,stop' with 0 <= start < stop (or empty)"
    return None


def _streams(s):
    if not s or any(x not in ("s", "tf", "t", "sf") for x in s) or len(set(s)) != len(s):
        return "expected a non-empty subset of s,tf,t,sf"
    return None


def _augment_streams(s):
    if any(x not in ("s", "tf", "t", "sf") for x in s) or len(set(s)) != len(s):
        return "expected a subset of s,tf,t,sf (empty = no augmentation)"
    return None


# The digit CNN's feature-conv widths unless --digit_widths says otherwise (here, not in models/, so that the
# flags are defined without importing Keras).
DIGIT_WIDTHS = (32, 64, 128)


def augment_problem(cutout, augment_streams, shift=0, beta=0.0):
    """Why --augment_cutout / --augment_shift cannot act with these --augment_streams and --beta (None when they
    can): the flag parser and the DAAA model (for configs built in code) both ask here."""
    for name, value in (("cutout", cutout), ("shift", shift)):
        if value and not augment_streams:
            return (f"--augment_{name}={value} acts on the augmented streams, but --augment_streams is empty; name "
                    "them (e.g. --augment_streams=t)")
    if shift and beta:
        return (f"--augment_shift={shift} moves pixels, so the attention pairs of L_AT (--beta={beta}) would no "
                "longer align; use it with --beta=0")
    return None


def _digit_widths(s):
    return "expected three widths >= 1 (conv1, conv2, conv3)" if len(s) != 3 or any(h < 1 for h in s) else None


def _noise_shape(s):
    return "expected h,w,c (three integers >= 1), or nothing" if s and (len(s) != 3 or min(s) < 1) else None


def _variants(names):
    from daaa_tf import experiments

    known = [*experiments.VARIANTS, *experiments.GROUPS]
    bad = [n for n in names if n not in known]
    return f"unknown variant {', '.join(bad) or '(none given)'}; expected some of {', '.join(known)}" if (
        bad or not names) else None


def _positive(s):
    return "expected widths >= 1" if any(h < 1 for h in s) else None


def _tflite_formats(s):
    from daaa_tf.serving.contract import TFLITE_MODES

    bad = [f for f in s if f not in TFLITE_MODES]
    return f"expected some of {','.join(TFLITE_MODES)}" if bad or not s else None


SHARED = {
    "run_dir": dict(default="runs/demo", help="Experiment directory; each stage writes a sub-directory.",
                    path="file"),
    "source": dict(default="demo", path="domain", help="Source domain: demo | mnist:DIR | mnist_m:DIR | "
                   "office31:DIR/amazon | tfds:NAME."),
    "target": dict(default="demo", help="Target domain (same forms as --source).", path="domain"),
    "arch": dict(default="digit_cnn", choices=["digit_cnn", "resnet50"], help="Classifier architecture."),
    "image_size": dict(default=32, lower=8, help="Square image size fed to the networks."),
    "weights": dict(default="none", path="file", help="ResNet-50 initial weights: imagenet | none | path to a "
                    "weights file."),
    "attention_layers": dict(default="all_conv", help="ResNet-50 taps: all_conv | blocks | comma-separated "
                             "layer names (the digit CNN always taps its three feature convs)."),
    "seed": dict(default=0, lower=0, help="Random seed."),
    "strategy": dict(default="auto", choices=["auto", "default", "mirrored", "multi_worker", "tpu"],
                     help="tf.distribute strategy."),
    "precision": dict(default="float32", choices=PRECISIONS, resolve=resolve_precision,
                      help="Keras dtype policy; auto: mixed_bfloat16 where bfloat16 is native (an AMX or "
                      "AVX512-BF16 CPU, a GPU of compute capability >= 8), else float32."),
    "eval_batch_size": dict(default=256, lower=1, help="Evaluation batch size."),
    "adapt_dir": dict(default="", path="file", help="Output directory of the adaptation stage (default "
                      "<run_dir>/adapt; trainers.revgrad: <run_dir>/variants/RevGrad/seed<seed>)."),
    "source_model": dict(default="", path="file", run_path="source/model.keras",
                         help="Frozen source network (default <run_dir>/source/model.keras)."),
    "pairs_dir": dict(default="", path="file", run_path="pairs", help="CycleGAN pair shards (default "
                      "<run_dir>/pairs)."),
    "batch_size": dict(default=64, lower=1, help="Global batch size B of the adaptation step."),
    "optimizer": dict(default="adam", choices=["adam", "sgd"], help="Adaptation optimizer (digits: adam; "
                      "Office: sgd)."),
    "lr": dict(default=1e-3, lower=0.0, help="eta0 of eta = eta0 * (1 + alpha p)^-power."),
    "lr_alpha": dict(default=10.0, lower=0.0, help="alpha of the annealing schedule."),
    "lr_power": dict(default=0.75, lower=0.0, help="power of the annealing schedule."),
    "head_lr_mult": dict(default=1.0, lower=0.0, help="Gradient multiplier of the new head (JAN protocol: 10 "
                         "with SGD)."),
    "epochs": dict(default=10, lower=1, help="Adaptation epochs (target-test evaluation after each)."),
    "steps_per_epoch": dict(default=150, lower=1, help="Adaptation steps per epoch."),
    "log_every": dict(default=10, lower=1, help="Write step scalars to TensorBoard every this many steps."),
    "profile_steps": dict(default=(), item=int, check=_profile_steps, help="Two step numbers 'start,stop' (counted "
                          "from 1 in this run) to profile with TensorBoard: <stage dir>/tensorboard/train/plugins/"
                          "profile/<time>/*.xplane.pb (view with the profile extra)."),
    "model": dict(default="", path="file", help="export.saved_model / export.tflite: the Keras model to export "
                  "(default: <run_dir>/adapt/model.keras if it exists, else <run_dir>/source/model.keras). "
                  "export.predict: a SavedModel directory or a .tflite file (default: "
                  "<run_dir>/export/saved_model)."),
    "overwrite": dict(default=False, help="Training stages: start a stage whose directory holds a run with other "
                      "settings or inputs afresh (the old directory is moved to <dir>.old-<timestamp>) instead of "
                      "refusing. Export: replace existing exported models instead of refusing."),
    "export_dir": dict(default="", path="file", run_path="export", help="Where exports go (default: "
                       "<run_dir>/export)."),
}


def shared(name, **changes):
    """The field of the shared setting ``name`` (its flag is ``name``)."""
    spec = {**SHARED[name], **changes}
    return setting(spec.pop("default"), spec.pop("help"), flag=name, **spec)


class _Stage:
    """Fills path fields left empty from run_dir (``run_path`` metadata)."""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            run_path = f.metadata.get("run_path")
            if run_path and not getattr(self, f.name):
                values = {g.name: getattr(self, g.name) for g in dataclasses.fields(self)}
                setattr(self, f.name, os.path.join(self.run_dir, run_path.format(**values)))


def flag_name(f):
    """The flag of field ``f``, or None when it is no flag."""
    return (f.metadata.get("flag") or f.name) if f.metadata.get("help") else None


def flag_fields(cls):
    """[(flag name, field)] of a config class."""
    return [(flag_name(f), f) for f in dataclasses.fields(cls) if flag_name(f)]


def convert(f, value):
    """A flag value (a list of strings for list flags; or text, as in a flagfile) -> the field's type."""
    item = f.metadata.get("item")
    if item is None:
        if not isinstance(value, str) or f.type not in (int, float, bool):
            return value
        if f.type is bool:
            return value.strip().lower() in ("1", "true", "yes")
        try:
            return f.type(value)
        except ValueError:
            raise UserError(f"--{flag_name(f)}: expected {f.type.__name__}, got {value!r}") from None
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    try:
        return tuple(item(v) for v in value)
    except ValueError:
        raise UserError(f"--{flag_name(f)}: expected {item.__name__} values, got {','.join(value)}") from None


def problem(f, value):
    """Why ``value`` is not valid for field ``f`` (one line naming the flag), or None."""
    m, name = f.metadata, flag_name(f)
    if m.get("lower") is not None and value < m["lower"]:
        return f"--{name}: expected a value >= {m['lower']}, got {value}"
    if m.get("upper") is not None and value > m["upper"]:
        return f"--{name}: expected a value <= {m['upper']}, got {value}"
    if m.get("choices") and value not in m["choices"]:
        return f"--{name}: expected one of {', '.join(map(repr, m['choices']))}, got {value!r}"
    message = m["check"](value) if m.get("check") else None
    shown = ",".join(map(str, value)) if isinstance(value, tuple) else value
    return f"--{name}: {message}, got {shown}" if message else None


def build(cls, values=None, **overrides):
    """A checked ``cls`` from flag values ({flag name: value}; absent ones keep their default) and field
    ``overrides``. Raises ValueError (one line naming the flag) for a bad value or an unknown override."""
    values, names = values or {}, {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"{cls.__name__} has no setting {', '.join(unknown)}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        name = flag_name(f)
        if f.name in overrides:
            value = overrides[f.name]
        elif name in values:
            value = values[name]
        elif (f.metadata.get("fallback") and not f.default) or f.metadata.get("resolve"):
            value = f.default  # not given: the shared flag's value, or the default resolved, as below
        else:
            continue
        value = convert(f, value) if name else value
        fallback = f.metadata.get("fallback")
        if fallback and not value:
            value = values.get(fallback, SHARED[fallback]["default"])
        if f.metadata.get("resolve"):
            value = f.metadata["resolve"](value)
        kwargs[f.name] = value
    cfg = cls(**kwargs)
    for f in dataclasses.fields(cls):
        message = flag_name(f) and problem(f, getattr(cfg, f.name))
        if message:
            raise UserError(message)
    return cfg


def _absolute(kind, value):
    if not value or kind is None:
        return value
    if kind == "domain":
        name, sep, rest = value.partition(":")
        return f"{name}:{os.path.abspath(rest)}" if sep and name != "tfds" and "://" not in rest else value
    return value if value in ("imagenet", "none") or "://" in value else os.path.abspath(value)


def flag_lines(cfg):
    """``cfg`` as '--flag=value' lines (booleans as --flag / --noflag, paths absolute): a replayable flagfile."""
    lines = []
    for name, f in flag_fields(type(cfg)):
        value = getattr(cfg, f.name)
        if isinstance(value, bool):
            lines.append(f"--{'' if value else 'no'}{name}")
            continue
        if isinstance(value, tuple):
            value = ",".join(str(v) for v in value)
        lines.append(f"--{name}={_absolute(f.metadata.get('path'), value)}")
    return lines
