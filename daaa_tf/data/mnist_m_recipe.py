"""The MNIST-M recipe of Ganin & Lempitsky as a generator: an MNIST-M-style domain of any size.

Each target image is ``|patch - digit|`` per channel, the patch a random crop (the digit's size) of a colour
photograph, the digit an MNIST digit replicated to RGB. The standard MNIST-M release was made this way from
BSDS500 photographs, its train split from the first 59,001 MNIST train digits and its test split from the
first 9,001 MNIST test digits, with patches of one photo pool for both splits. ``build_release`` writes the
same layout as that release (``mnist_m_{train,test}/*.png`` and ``mnist_m_{split}_labels.txt``), so the
result is read by ``mnist_m:DIR`` like the real one.

``packaged_photos()`` returns the colour photographs that the installed packages ship (scikit-image,
scikit-learn, matplotlib): the photo pool of the full-size development target built by
``python -m trainers.make_mnist_m`` (see ``docs/benchmark.md``).
"""

import itertools
import os

import numpy as np

from daaa_tf import MissingFileError, UserError

# Colour photographs shipped inside installed wheels (no download). skimage's cat() is chelsea().
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "hubble_deep_field", "immunohistochemistry", "retina",
                  "rocket", "stereo_motorcycle", "colorwheel")
SKLEARN_PHOTOS = ("china.jpg", "flower.jpg")
MATPLOTLIB_PHOTOS = ("grace_hopper.jpg",)
RELEASE_SIZES = {"train": 59001, "test": 9001}
# --photo_views: "original" (each photo as it is) or "recoloured" (18 views of each, see photo_views).
PHOTO_VIEWS = ("original", "recoloured")
DEAD_LEAVES_COUNT = 500  # --photos=dead_leaves: as many images as BSDS500 has
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def blend(digits, photos, photo_ids, rng):
    """MNIST-M recipe: ``|patch - digit|`` per channel, each patch a random crop of its photograph.

    digits: uint8 [N, S, S, 3]; photos: list of uint8 [H, W, 3]; photo_ids: [N] indices into ``photos``.
    Returns uint8 [N, S, S, 3].
    """
    n, size = digits.shape[0], digits.shape[1]
    out = np.empty_like(digits)
    for i in range(n):
        photo = photos[photo_ids[i]]
        top = rng.integers(0, photo.shape[0] - size + 1)
        left = rng.integers(0, photo.shape[1] - size + 1)
        patch = photo[top:top + size, left:left + size].astype(np.int16)
        out[i] = np.abs(patch - digits[i].astype(np.int16)).astype(np.uint8)
    return out


def _rgb(img, name):
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[-1] not in (3, 4):
        raise UserError(f"photo {name}: {img.dtype} {img.shape}, expected uint8 [H, W, 3]")
    return np.ascontiguousarray(img[..., :3])


def packaged_photos():
    """{name: uint8 [H, W, 3]}: the colour photographs bundled in scikit-image, scikit-learn and matplotlib."""
    import matplotlib
    import skimage.data
    from sklearn.datasets import load_sample_image

    from daaa_tf.images import read_image

    out = {}
    for name in SKIMAGE_PHOTOS:
        img = getattr(skimage.data, name)()
        out[f"skimage.{name}"] = _rgb(img[0] if isinstance(img, tuple) else img, name)
    for name in SKLEARN_PHOTOS:
        out[f"sklearn.{name}"] = _rgb(load_sample_image(name), name)
    folder = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "sample_data")
    for name in MATPLOTLIB_PHOTOS:
        out[f"matplotlib.{name}"] = _rgb(read_image(os.path.join(folder, name)), name)
    return out


def photo_views(photos, views="original", min_side=28):
    """{name: uint8 [H, W, 3]}: ``photos`` as they are, or each in 18 views ("recoloured").

    The recoloured views of a photo: its 6 channel orders, each as it is, as its negative (255 - x) and at half
    size (every other pixel; kept when still ``min_side`` on each side). The packaged photos are few and mostly
    dark, which makes the target easier than BSDS500's: with these views the source network reads the development
    target's test set at 56.6 % (the real release: 57.4 %), without them at 65.2 % (docs/benchmark.md).
    """
    if views not in PHOTO_VIEWS:
        raise UserError(f"--photo_views={views!r}: expected one of {', '.join(PHOTO_VIEWS)}")
    if views == "original":
        return dict(photos)
    out = {}
    for name, img in photos.items():
        for order in itertools.permutations(range(3)):
            view = np.ascontiguousarray(img[..., list(order)])
            tag = f"{name}.{''.join('rgb'[c] for c in order)}"
            out[tag] = view
            out[f"{tag}.negative"] = 255 - view
            half = np.ascontiguousarray(view[::2, ::2])
            if min(half.shape[:2]) >= min_side:
                out[f"{tag}.half"] = half
    return out


def leaf_radius(u, r_min, r_max):
    """The radius at quantile ``u`` of p(r) ~ r^-3 on [r_min, r_max] (inverse CDF; u uniform on [0, 1))."""
    lo, hi = r_min ** -2, r_max ** -2
    return (lo - u * (lo - hi)) ** -0.5


def dead_leaves(rng, colours, height=321, width=481, r_min=3.0, r_max=120.0):
    """uint8 [height, width, 3]: a dead-leaves image (opaque discs dropped until the plane is covered).

    Radii follow p(r) ~ r^-3 on [r_min, r_max], the scale-invariant law under which dead-leaves images share
    natural photographs' statistics (occlusion edges at every scale); each disc is one colour drawn from
    ``colours`` (uint8 [K, 3]). Painted front to back: each disc covers only what is still free.
    """
    img = np.zeros((height, width, 3), np.uint8)
    free = np.ones((height, width), bool)
    rows, cols = np.mgrid[0:height, 0:width]
    while free.any():
        r = leaf_radius(rng.random(), r_min, r_max)
        cy, cx, ri = rng.integers(0, height), rng.integers(0, width), int(np.ceil(r))
        y0, y1, x0, x1 = max(cy - ri, 0), min(cy + ri + 1, height), max(cx - ri, 0), min(cx + ri + 1, width)
        disc = ((rows[y0:y1, x0:x1] - cy) ** 2 + (cols[y0:y1, x0:x1] - cx) ** 2 <= r * r) & free[y0:y1, x0:x1]
        img[y0:y1, x0:x1][disc] = colours[rng.integers(len(colours))]
        free[y0:y1, x0:x1] &= ~disc
    return img


def dead_leaves_photos(photos, count=DEAD_LEAVES_COUNT, seed=0, samples=2000):
    """{name: uint8 [321, 481, 3]}: ``count`` dead-leaves images (BSDS500's size and count) whose disc colours
    are ``samples`` pixels drawn from each of ``photos``: natural colours, and clutter at every scale."""
    rng = np.random.default_rng(seed)
    colours = np.concatenate([img.reshape(-1, 3)[rng.integers(0, img.shape[0] * img.shape[1], samples)]
                              for _, img in sorted(photos.items())])
    return {f"dead_leaves_{i:03d}": dead_leaves(rng, colours) for i in range(count)}


def folder_photos(folder, min_side=28):
    """{file name: uint8 [H, W, 3]} for every image file in ``folder`` at least ``min_side`` on each side."""
    from daaa_tf.images import read_image

    if not os.path.isdir(folder):
        raise MissingFileError(f"--photos: {folder} is not a folder of photographs")
    out = {}
    for name in sorted(os.listdir(folder)):
        if not name.lower().endswith(PHOTO_SUFFIXES):
            continue
        try:
            img = read_image(os.path.join(folder, name))
        except ValueError as e:
            raise UserError(f"--photos: {e}") from None
        if min(img.shape[:2]) >= min_side:
            out[name] = img
    if not out:
        raise UserError(f"--photos: no image of at least {min_side}x{min_side} pixels in {folder}")
    return out


def build_split(digits, labels, photos, rng):
    """Blends ``digits`` (uint8 [N, S, S] grey) over random patches of ``photos`` (a list); (images, photo ids)."""
    rgb = np.repeat(digits[..., None], 3, axis=-1)
    photo_ids = rng.integers(0, len(photos), size=len(digits)).astype(np.int32)
    return blend(rgb, photos, photo_ids, rng), photo_ids


def write_release(out_dir, split, images, labels):
    """Writes ``out_dir/mnist_m_{split}/NNNNNNNN.png`` and the labels file, each renamed into place when done."""
    from PIL import Image

    folder = os.path.join(out_dir, f"mnist_m_{split}")
    os.makedirs(folder, exist_ok=True)
    lines = []
    for i, (img, y) in enumerate(zip(images, labels)):
        name = f"{i:08d}.png"
        Image.fromarray(img).save(os.path.join(folder, name))
        lines.append(f"{name} {int(y)}\n")
    tmp = os.path.join(out_dir, f".mnist_m_{split}_labels.txt.tmp")
    with open(tmp, "w") as f:
        f.writelines(lines)
    os.replace(tmp, os.path.join(out_dir, f"mnist_m_{split}_labels.txt"))


def make_splits(mnist_dir, photos, sizes=None, seed=0):
    """Yields (split, uint8 images [N, S, S, 3], labels [N]) of the recipe, split by split in ``sizes`` order.

    ``sizes``: {split: N}, default the real release's 59,001 / 9,001 (the first N digits of each MNIST split).
    One generator seeded with ``seed`` draws every split in turn, so the same call gives the same images
    whoever writes them (``build_release``, the tfds builder ``daaa_tf.data.tfds_mnist_m.MnistMRecipe``).
    """
    from daaa_tf.data.mnist import FILES, IMAGE_MAGIC, LABEL_MAGIC, find_idx, read_idx

    sizes = dict(RELEASE_SIZES if sizes is None else sizes)
    pool = [photos[n] for n in sorted(photos)]
    rng = np.random.default_rng(seed)
    for split, n in sizes.items():
        img_file, lab_file = FILES[split]
        digits = read_idx(find_idx(mnist_dir, img_file), IMAGE_MAGIC)
        labels = read_idx(find_idx(mnist_dir, lab_file), LABEL_MAGIC)
        if n > len(digits):
            raise UserError(f"--{split}_size={n}: MNIST {split} has only {len(digits)} digits")
        images, _ = build_split(digits[:n], labels[:n], pool, rng)
        yield split, images, labels[:n]


def build_release(mnist_dir, out_dir, photos, sizes=None, seed=0):
    """MNIST-M-style release from the MNIST idx files in ``mnist_dir`` and ``photos`` ({name: array}).

    ``sizes``: {split: N}, default the real release's 59,001 / 9,001 (the first N digits of each MNIST split).
    Returns {split: N written}. Writes ``out_dir/recipe.json`` (photos, sizes, seed) last.
    """
    import json

    os.makedirs(out_dir, exist_ok=True)
    written = {}
    for split, images, labels in make_splits(mnist_dir, photos, sizes, seed):
        write_release(out_dir, split, images, labels)
        written[split] = len(labels)
    with open(os.path.join(out_dir, "recipe.json"), "w") as f:
        json.dump({"recipe": "mnist_m (|patch - digit|)", "photos": sorted(photos), "sizes": written,
                   "seed": seed, "mnist": os.path.abspath(mnist_dir)}, f, indent=1)
    return written
