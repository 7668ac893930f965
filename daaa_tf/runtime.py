"""Distribution strategies, seeding and mixed precision."""

import functools
import os
import re
import subprocess

import keras
import tensorflow as tf

from daaa_tf import UserError

STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
_STRATEGIES = {}  # one MirroredStrategy per process, reused


def make_strategy(name="auto"):
    """Returns a ``tf.distribute`` strategy.

    auto: a TPU if one is attached (TPU_NAME set), MirroredStrategy over all GPUs if there are several,
    otherwise the default strategy. mirrored: all GPUs, or all logical CPUs when there is no GPU (the test
    setup; created once per process and reused). multi_worker: MultiWorkerMirroredStrategy (reads TF_CONFIG; once per
    process, created before the first TF op; docs/design.md, "Multi-worker").
    tpu: TPUStrategy.
    """
    if name not in STRATEGIES:
        raise UserError(f"--strategy: expected one of {STRATEGIES}, got {name!r}")
    if name == "auto":
        if os.environ.get("TPU_NAME"):
            name = "tpu"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if "mirrored" not in _STRATEGIES:
            gpus = tf.config.list_logical_devices("GPU")
            devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
            # Several MirroredStrategy objects in one process reuse collective instance keys and can abort
            # with "Shape mismatch in the collective instance"; on CPUs reduce through one device instead.
            ops = None if gpus else tf.distribute.ReductionToOneDevice()
            _STRATEGIES["mirrored"] = tf.distribute.MirroredStrategy(devices, cross_device_ops=ops)
        return _STRATEGIES["mirrored"]
    if name == "multi_worker":  # one per process (it configures the collective ops at program start)
        if "multi_worker" not in _STRATEGIES:
            from daaa_tf import workers

            workers.fix_keras_for_multi_worker()
            _STRATEGIES["multi_worker"] = tf.distribute.MultiWorkerMirroredStrategy()
        return _STRATEGIES["multi_worker"]
    tpu = os.environ.get("TPU_NAME", "")
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as e:  # no TPU, or not reachable
        where = f"TPU_NAME={tpu!r} could not be reached" if tpu else "no TPU found and TPU_NAME is not set"
        raise UserError(f"--strategy=tpu: {where} ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                        "name the TPU in the TPU_NAME environment variable (a Cloud TPU name, or grpc://HOST:8470), "
                        "or use --strategy=auto") from None
    return tf.distribute.TPUStrategy(resolver)


def split_cpu(n=2):
    """Splits the physical CPU into ``n`` logical devices (call before TF initialises its devices)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)


def set_seed(seed):
    """Seeds Python, NumPy, TF and Keras."""
    keras.utils.set_random_seed(int(seed))


def cpu_has_native_bfloat16(cpuinfo):
    """Whether /proc/cpuinfo's text lists a bfloat16 unit (AMX-BF16 or AVX512-BF16)."""
    return re.search(r"\b(amx_bf16|avx512_bf16)\b", cpuinfo) is not None


@functools.cache
def native_bfloat16():
    """Whether bfloat16 math runs natively here: on a GPU of compute capability >= 8.0, or, with no GPU, on a CPU
    with AMX-BF16 or AVX512-BF16. Elsewhere TF emulates it: the DAAA step ran 10x slower in mixed_bfloat16 than in
    float32 on an AVX2 CPU, where an AMX CPU ran it 2.3x faster (docs/benchmark.md)."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return all(tf.config.experimental.get_device_details(g).get("compute_capability", (0, 0)) >= (8, 0)
                   for g in gpus)
    try:
        with open("/proc/cpuinfo") as f:
            return cpu_has_native_bfloat16(f.read())
    except OSError:  # not Linux: no way to tell, so the safe choice
        return False


def resolve_precision(policy):
    """``auto`` -> mixed_bfloat16 where bfloat16 is native (``native_bfloat16``), else float32; others as given."""
    if policy != "auto":
        return policy
    return "mixed_bfloat16" if native_bfloat16() else "float32"


def set_precision(policy="float32"):
    """Sets the global Keras dtype policy (``auto`` resolved); logits stay float32 (the heads set dtype=float32)."""
    if policy not in PRECISIONS:
        raise UserError(f"--precision: expected one of {PRECISIONS}, got {policy!r}")
    keras.mixed_precision.set_global_policy(resolve_precision(policy))


def fit_verbosity():
    """Keras progress bars on a terminal; one line per epoch when the output goes to a file or CI log."""
    import sys

    return "auto" if sys.stdout.isatty() and not os.environ.get("CI") else 2


@functools.cache
def code_version():
    """The code that makes a result, for its metrics.json: 'daaa-tf <version>', plus ' (git <commit>)' when run
    from a git checkout, and '+changes' when tracked files differ from that commit."""
    from daaa_tf import __version__

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = f"daaa-tf {__version__}"
    if not os.path.exists(os.path.join(root, ".git")):
        return out  # an installed copy, not a checkout
    try:
        git = ["git", "-C", root]
        head = subprocess.run([*git, "rev-parse", "--short=7", "HEAD"], capture_output=True, text=True, timeout=20)
        if head.returncode:
            return out
        dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=20).stdout.strip()
        return f"{out} (git {head.stdout.strip()}{'+changes' if dirty else ''})"
    except (OSError, subprocess.SubprocessError):  # no git on this machine
        return out
