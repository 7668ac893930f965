"""Office-31 from its folder layout (``office31:ROOT/DOMAIN``).

``ROOT/{amazon,dslr,webcam}/images/<class>/*.jpg`` (a domain folder that holds the class folders directly,
without ``images/``, is accepted too). Labels are the indices of the sorted class folder names, which must
be the same in every domain present under ROOT.

Images are held as file paths and decoded inside ``tf.data``. ``tfds.folder_dataset.ImageFolder`` reads the
same layout but fails mid-epoch on a corrupt file, so instead a first pass decodes every file once with the
very decoder the pipeline uses (``tf.io.decode_image`` in a parallel ``tf.data`` map with ``ignore_errors``)
and leaves out, counts and reports the files that fail. The pass's result is cached (keyed by every file's
path, size and mtime), so it runs once per domain.
"""

import json
import os

import numpy as np
import tensorflow as tf
from absl import logging

from daaa_tf import MissingFileError, UserError
from daaa_tf.data.domains import Domain, cache_root, check_split, fingerprint
from daaa_tf.io import write_json

DOMAINS = ("amazon", "dslr", "webcam")
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


def parse_spec(path):
    """``ROOT/DOMAIN`` -> (abs ROOT, DOMAIN)."""
    path = os.path.abspath(os.path.expanduser(path))
    root, domain = os.path.split(path.rstrip(os.sep))
    if domain not in DOMAINS:
        raise UserError(f"office31:{path}: the last path component must be one of {DOMAINS} "
                        f"(office31:ROOT/DOMAIN), got {domain!r}")
    return root, domain


def images_dir(root, domain):
    """The folder holding ``domain``'s class folders, or None if the domain is absent."""
    base = os.path.join(root, domain)
    if os.path.isdir(os.path.join(base, "images")):
        return os.path.join(base, "images")
    return base if os.path.isdir(base) else None


def class_folders(folder):
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def check_classes(root, domain, classes):
    """Raises if another domain under ROOT has a different class list (names both and the difference)."""
    for other in DOMAINS:
        other_dir = images_dir(root, other)
        if other == domain or other_dir is None:
            continue
        theirs = class_folders(other_dir)
        if theirs != classes:
            only_here = sorted(set(classes) - set(theirs))
            only_there = sorted(set(theirs) - set(classes))
            raise UserError(f"office31: class folders differ between {os.path.join(root, domain)} "
                            f"({len(classes)}) and {os.path.join(root, other)} ({len(theirs)}): "
                            f"only in {domain}: {only_here or '-'}; only in {other}: {only_there or '-'}")


def list_images(folder, classes):
    """(paths, labels) of every image file under ``folder/<class>/``, sorted by class then file name."""
    paths, labels = [], []
    for label, name in enumerate(classes):
        class_dir = os.path.join(folder, name)
        for fname in sorted(os.listdir(class_dir)):
            if fname.lower().endswith(IMAGE_EXTS) and not fname.startswith("."):
                paths.append(os.path.join(class_dir, fname))
                labels.append(label)
    return paths, np.asarray(labels, np.int32)


def find_unreadable(paths):
    """Indices of the files ``tf.io.decode_image`` cannot decode (one parallel pass, errors ignored)."""
    def probe(i, path):
        img = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        return i, tf.shape(img)[0]

    ds = tf.data.Dataset.from_tensor_slices((np.arange(len(paths), dtype=np.int64), paths))
    ds = ds.map(probe, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False).ignore_errors()
    ok = {int(i) for i, _ in ds.as_numpy_iterator()}
    return [i for i in range(len(paths)) if i not in ok]


def unreadable_cached(paths, folder, cache_dir):
    """``find_unreadable`` with its result cached under a key of every file's path, size and mtime."""
    stats = [(p, s.st_size, s.st_mtime_ns) for p, s in ((p, os.stat(p)) for p in paths)]
    cache_path = os.path.join(cache_root(cache_dir), f"office31-check-{fingerprint(folder, stats)}.json")
    if os.path.exists(cache_path):
        try:
            with open(cache_path) as f:
                return json.load(f)["unreadable"]
        except (OSError, ValueError, KeyError):
            pass
    bad = find_unreadable(paths)
    try:
        write_json(cache_path, {"folder": folder, "unreadable": bad})
    except OSError as e:
        logging.warning("could not write the cache file %s (%s); continuing without it", cache_path, e)
    return bad


def load_office31(path, split, image_size=224, cache_dir=None):
    """``office31:ROOT/DOMAIN``: the whole domain (both splits; the DA protocol uses all of it)."""
    root, domain = parse_spec(path)
    spec = f"office31:{os.path.join(root, domain)}"
    check_split(spec, split)
    if not os.path.isdir(root):
        raise MissingFileError(f"{spec}: directory {root} does not exist")
    folder = images_dir(root, domain)
    if folder is None:
        raise MissingFileError(f"{spec}: directory {os.path.join(root, domain)} does not exist "
                               "(expected ROOT/DOMAIN/images/<class>/*.jpg)")
    classes = class_folders(folder)
    if not classes:
        raise UserError(f"{spec}: no class folders in {folder} (expected {folder}/<class>/*.jpg)")
    check_classes(root, domain, classes)
    paths, labels = list_images(folder, classes)
    if not paths:
        raise UserError(f"{spec}: no image files ({'/'.join(IMAGE_EXTS)}) under {folder}/<class>/")
    bad = set(unreadable_cached(paths, folder, cache_dir))
    skipped = [paths[i] for i in sorted(bad)]
    if bad:
        keep = [i for i in range(len(paths)) if i not in bad]
        paths, labels = [paths[i] for i in keep], labels[keep]
        logging.warning("office31: skipped %d unreadable image(s) in %s (first: %s)", len(skipped), folder,
                        skipped[0])
        if not paths:
            raise UserError(f"{spec}: none of the image files under {folder} could be decoded")
    return Domain(spec, split, classes, image_size, paths=np.asarray(paths), labels=labels,
                  skipped_files=skipped, info={"root": root, "domain": domain})
