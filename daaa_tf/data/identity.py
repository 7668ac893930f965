"""``data_identity(spec, role)``: a cheap identity of the files a domain spec reads, without decoding images
(docs/design.md, "Fingerprints"). Recorded in the run fingerprints, so a rerun after the data changed under the
same spec is refused instead of silently resuming on other data.

Per form (both splits, the paths resolved as the readers resolve them):
  mnist:DIR             sha256 of the four idx files (plain or .gz, whichever the reader would read)
  mnist_m:DIR           sha256 of the two labels files, and (name, size) of every PNG they list
  office31:ROOT/DOMAIN  the class folders and (relative path, size) of every image the reader lists
  demo[:...]            the resolved demo name and the demo generator's cache key (VERSION, photos, sizes)
  tfds:NAME             name, version and (name, size) of every file of the prepared dataset's folder

Nothing is cached: every call looks at the files again (gzipped MNIST ~0.02 s, plain idx ~0.08 s; MNIST-M's
59,001 + 9,001 PNGs 0.3-0.5 s on a local disk). Image folders count by (name, size), not content.
A missing file or folder raises the reader's own one-line error.
"""

import hashlib
import os

import tensorflow as tf

from daaa_tf import UserError, io


def _digest(parts):
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def _sizes(folder, names):
    """{name: size in bytes} of the files ``names`` in ``folder`` that exist (os.scandir for a local folder)."""
    wanted = set(names)
    if io.is_remote(folder):
        return {n: tf.io.gfile.stat(os.path.join(folder, n)).length for n in wanted
                if tf.io.gfile.exists(os.path.join(folder, n))}
    with os.scandir(folder) as it:
        return {e.name: e.stat().st_size for e in it if e.name in wanted}


def _mnist(arg):
    from daaa_tf.data.domains import require_dir
    from daaa_tf.data.mnist import FILES, find_idx

    directory = io.absolute(os.path.expanduser(arg))
    require_dir(directory, "mnist")
    paths = [find_idx(directory, base) for pair in FILES.values() for base in pair]
    return f"mnist:{directory}", [(os.path.basename(p), io.sha256_file(p)) for p in paths]


def _mnist_m(arg):
    from daaa_tf.data.domains import require_dir
    from daaa_tf.data.mnist_m import parse_labels

    directory = io.absolute(os.path.expanduser(arg))
    require_dir(directory, "mnist_m")
    parts = []
    for split in ("train", "test"):
        folder = os.path.join(directory, f"mnist_m_{split}")
        labels = os.path.join(directory, f"mnist_m_{split}_labels.txt")
        require_dir(folder, "mnist_m")
        if not io.is_file(labels):
            parse_labels(labels, folder)  # raises the reader's one-line error
        names = [line.split()[0] for line in io.read_text_lines(labels) if line.strip()]
        sizes = _sizes(folder, names)
        parts.append((split, io.sha256_file(labels), [(n, sizes.get(n)) for n in names]))
    return f"mnist_m:{directory}", parts


def _office31(arg):
    from daaa_tf.data.office31 import class_folders, images_dir, list_images, load_office31, parse_spec

    root, domain = parse_spec(arg)
    folder = images_dir(root, domain) if tf.io.gfile.isdir(root) else None
    if folder is None:
        load_office31(arg, "train")  # raises the reader's one-line error
    classes = class_folders(folder)
    paths, _ = list_images(folder, classes)
    by_class = {}
    for p in paths:
        by_class.setdefault(os.path.basename(os.path.dirname(p)), []).append(os.path.basename(p))
    files = []
    for name, chosen in by_class.items():
        sizes = _sizes(os.path.join(folder, name), chosen)
        files += [(f"{name}/{n}", sizes.get(n)) for n in chosen]
    return f"office31:{os.path.join(root, domain)}", (classes, files)


def _demo(arg, role):
    from daaa_tf.data.demo import NAMES, SPLIT_SIZES, TEST_PHOTOS, TRAIN_PHOTOS, VERSION

    names = {"": role, "mnist": "source", "mnist_m": "target"}
    if arg not in names:
        raise UserError(f"domain spec 'demo:{arg}': expected demo, demo:mnist or demo:mnist_m")
    name = NAMES[names[arg]]
    return name, (name, VERSION, TRAIN_PHOTOS, TEST_PHOTOS, tuple(map(tuple, SPLIT_SIZES)))


def _tfds(arg):
    import tensorflow_datasets as tfds

    from daaa_tf.data.tfds_domain import load_tfds

    data_dir = os.environ.get("TFDS_DATA_DIR") or None
    try:
        builder = tfds.builder(arg, data_dir=data_dir)
        prepared = builder.is_prepared()
    except Exception:  # noqa: BLE001  (the reader says what is wrong, in one line)
        prepared = False
    if not prepared:
        load_tfds(arg, "train", data_dir=data_dir)  # raises the reader's one-line error
    folder = str(builder.data_dir)
    names = sorted(tf.io.gfile.listdir(folder))
    sizes = _sizes(folder, names)
    return f"tfds:{arg}", (str(builder.version), [(n, sizes.get(n)) for n in names])


def data_identity(spec, role="source"):
    """{"spec": the resolved spec, "files": a 16-hex digest of the files it reads, not of their location} (see
    the module docstring); ``role`` only resolves the bare ``demo``. Raises the readers' one-line errors for
    missing files."""
    from daaa_tf.data import SPEC_FORMS

    if not isinstance(spec, str) or not spec.strip():
        raise UserError(f"domain spec: expected one of {SPEC_FORMS}, got {spec!r}")
    kind, sep, arg = spec.strip().partition(":")
    if kind == "demo":
        if sep and not arg:
            raise UserError(f"domain spec {spec!r}: expected demo, demo:mnist or demo:mnist_m")
        resolved, parts = _demo(arg, role)
    elif not sep or not arg or kind not in ("mnist", "mnist_m", "office31", "tfds"):
        raise UserError(f"domain spec {spec!r}: expected one of {SPEC_FORMS}")
    else:
        resolved, parts = {"mnist": _mnist, "mnist_m": _mnist_m, "office31": _office31, "tfds": _tfds}[kind](arg)
    return {"spec": resolved, "files": _digest(parts)}  # of the files only: the same files elsewhere, the same


__all__ = ["data_identity"]
