"""Image domains: ``load_domain(spec, split, image_size, role)`` -> ``Domain``.

Spec forms:
  demo                    the embedded demo, no download: role "source" -> demo:mnist, "target" -> demo:mnist_m
  demo:mnist, demo:mnist_m  the two demo domains by name
  mnist:DIR               the standard idx files (train-images-idx3-ubyte[.gz], ..., t10k-labels-idx1-ubyte[.gz])
  mnist_m:DIR             DIR/mnist_m_{train,test}/*.png and DIR/mnist_m_{train,test}_labels.txt
  office31:ROOT/DOMAIN    ROOT/{amazon,dslr,webcam}/images/<class>/*.jpg (both splits = the whole domain)
  tfds:NAME               an already-prepared TensorFlow Datasets dataset (never downloads)

Pair shards (``pairs``), batch mixing (``mixing``) and the per-stage tf.data pipelines (``pipelines``) are
separate modules of this package.
"""

import operator

from daaa_tf import UserError
from daaa_tf.data.domains import ROLES, SPLITS, Domain

KINDS = ("demo", "mnist", "mnist_m", "office31", "tfds")
SPEC_FORMS = "demo, demo:mnist, demo:mnist_m, mnist:DIR, mnist_m:DIR, office31:ROOT/DOMAIN, tfds:NAME"

__all__ = ["Domain", "KINDS", "ROLES", "SPEC_FORMS", "SPLITS", "load_domain"]


def load_domain(spec, split, image_size=32, role="source", cache_dir=None, seed=0):
    """Loads one split of the domain named by ``spec`` (see the module docstring for the forms).

    Args:
      spec: the domain spec string.
      split: "train" or "test" (Office-31 returns the whole domain for both).
      image_size: side of the square uint8 RGB images the domain yields.
      role: "source" or "target"; only picks which demo domain the bare ``demo`` means.
      cache_dir: where decoded/built arrays are cached (default ``$DAAA_TF_CACHE`` or ``~/.cache/daaa_tf``).
      seed: the demo's seed (other domains ignore it).
    Raises:
      ValueError / FileNotFoundError with one line naming the spec or path and what was expected.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise UserError(f"domain spec: expected one of {SPEC_FORMS}, got {spec!r}")
    if split not in SPLITS:
        raise ValueError(f"{spec}: split must be one of {SPLITS}, got {split!r}")
    if role not in ROLES:
        raise ValueError(f"{spec}: role must be one of {ROLES}, got {role!r}")
    try:
        size = operator.index(image_size)
    except TypeError:
        size = 0
    if size < 8:
        raise UserError(f"{spec}: image_size must be an integer >= 8, got {image_size!r}")
    image_size = size
    kind, sep, arg = spec.strip().partition(":")
    if kind == "demo":
        from daaa_tf.data.demo import load_demo

        names = {"": role, "mnist": "source", "mnist_m": "target"}
        if arg not in names or (sep and not arg):
            raise UserError(f"domain spec {spec!r}: expected demo, demo:mnist or demo:mnist_m")
        return load_demo(names[arg], split, image_size, seed=seed, cache_dir=cache_dir)
    if kind not in KINDS or not sep or not arg:
        raise UserError(f"domain spec {spec!r}: expected one of {SPEC_FORMS}")
    if kind == "mnist":
        from daaa_tf.data.mnist import load_mnist

        return load_mnist(arg, split, image_size)
    if kind == "mnist_m":
        from daaa_tf.data.mnist_m import load_mnist_m

        return load_mnist_m(arg, split, image_size, cache_dir=cache_dir)
    if kind == "office31":
        from daaa_tf.data.office31 import load_office31

        return load_office31(arg, split, image_size, cache_dir=cache_dir)
    from daaa_tf.data.tfds_domain import load_tfds

    return load_tfds(arg, split, image_size)
