"""MNIST-M as TensorFlow Datasets builders that never download: everything comes from ``manual_dir``.

``MnistMRecipe`` (``mnist_m_recipe``) makes MNIST-M by Ganin & Lempitsky's recipe
(``daaa_tf.data.mnist_m_recipe``): its manual_dir holds the four MNIST idx files (plain or .gz) and, optionally,
``photos/`` with colour photographs (default: the photographs packaged in scikit-image, scikit-learn and
matplotlib). Config ``release`` (the default) has the real release's sizes, 59,001 train / 9,001 test, and
seed 0, and gives the same images as ``python -m trainers.make_mnist_m`` with the same photos.

``MnistMRelease`` (``mnist_m_release``) reads the standard MNIST-M release layout from manual_dir
(``mnist_m_{train,test}/*.png`` and ``mnist_m_{train,test}_labels.txt``), like ``mnist_m:DIR``.

Prepare once, then read with ``--target=tfds:mnist_m_recipe`` (or ``tfds:mnist_m_release``; ``tfds:NAME``
imports this module) with ``TFDS_DATA_DIR`` pointing at the data_dir, as for any prepared dataset:

    python -m daaa_tf.data.tfds_mnist_m mnist_m_recipe MANUAL_DIR [DATA_DIR]

or ``prepare("mnist_m_recipe", MANUAL_DIR, data_dir)`` from Python (``tfds build --imports=daaa_tf.data.tfds_mnist_m
mnist_m_recipe --manual_dir=MANUAL_DIR`` does the same where the tfds CLI runs: it needs apache_beam).
"""

import dataclasses
import os
import sys

import tensorflow_datasets as tfds

from daaa_tf import MissingFileError, UserError
from daaa_tf.data import mnist_m_recipe

CLASS_NAMES = [str(i) for i in range(10)]
BUILDERS = ("mnist_m_recipe", "mnist_m_release")
HOMEPAGE = "http://yaroslav.ganin.net/"
CITATION = """@inproceedings{ganin2015unsupervised,
  title={Unsupervised Domain Adaptation by Backpropagation}, author={Ganin, Yaroslav and Lempitsky, Victor},
  booktitle={ICML}, year={2015}}"""


PREPARE_HINT = ("prepare it from local files with `python -m daaa_tf.data.tfds_mnist_m {name} MANUAL_DIR "
                "[DATA_DIR]` ({instructions})")


def _features():
    return tfds.features.FeaturesDict({"image": tfds.features.Image(shape=(None, None, 3)),
                                       "label": tfds.features.ClassLabel(names=CLASS_NAMES)})


@dataclasses.dataclass
class MnistMRecipeConfig(tfds.core.BuilderConfig):
    """Sizes (the first N digits of each MNIST split), the seed of the photo choice and patch positions, and
    the views of each photo (``mnist_m_recipe.photo_views``: "original" or "recoloured")."""

    train_size: int = mnist_m_recipe.RELEASE_SIZES["train"]
    test_size: int = mnist_m_recipe.RELEASE_SIZES["test"]
    seed: int = 0
    photo_views: str = "original"


class MnistMRecipe(tfds.core.GeneratorBasedBuilder):
    """MNIST-M made from the MNIST idx files in manual_dir and colour photographs (|patch - digit|)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "The recipe of daaa_tf.data.mnist_m_recipe."}
    BUILDER_CONFIGS = [MnistMRecipeConfig(name="release", description="59,001 train / 9,001 test, seed 0")]
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Put the four MNIST idx files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        "t10k-labels-idx1-ubyte, plain or .gz) in manual_dir, and optionally a photos/ folder of colour "
        "photographs (default: the photographs packaged in scikit-image, scikit-learn and matplotlib).")

    def _info(self):
        return self.dataset_info_from_configs(
            description="MNIST-M by the recipe of Ganin & Lempitsky: |patch - digit| per channel, the patch a "
                        "random crop of a colour photograph.",
            features=_features(), supervised_keys=("image", "label"), homepage=HOMEPAGE, citation=CITATION)

    def _split_generators(self, dl_manager):
        manual = os.fspath(dl_manager.manual_dir)
        folder = os.path.join(manual, "photos")
        photos = (mnist_m_recipe.folder_photos(folder) if os.path.isdir(folder)
                  else mnist_m_recipe.packaged_photos())
        photos = mnist_m_recipe.photo_views(photos, self.builder_config.photo_views)
        sizes = {"train": self.builder_config.train_size, "test": self.builder_config.test_size}
        return {split: self._generate_examples(images, labels) for split, images, labels
                in mnist_m_recipe.make_splits(manual, photos, sizes, self.builder_config.seed)}

    def _generate_examples(self, images, labels):
        for i, (image, label) in enumerate(zip(images, labels)):
            yield i, {"image": image, "label": int(label)}


class MnistMRelease(tfds.core.GeneratorBasedBuilder):
    """The standard MNIST-M release layout in manual_dir (mnist_m_{train,test}/ and their labels files)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "The standard release layout."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Put the MNIST-M release in manual_dir: mnist_m_train/, mnist_m_test/ (PNGs) and "
        "mnist_m_train_labels.txt, mnist_m_test_labels.txt (lines like '00000000.png 5').")

    def _info(self):
        return self.dataset_info_from_configs(
            description="MNIST-M (Ganin & Lempitsky) from its standard release layout.",
            features=_features(), supervised_keys=("image", "label"), homepage=HOMEPAGE, citation=CITATION)

    def _split_generators(self, dl_manager):
        from daaa_tf.data.mnist_m import parse_labels

        manual = os.fspath(dl_manager.manual_dir)
        splits = {}
        for split in ("train", "test"):
            folder = os.path.join(manual, f"mnist_m_{split}")
            names, labels = parse_labels(os.path.join(manual, f"mnist_m_{split}_labels.txt"), folder)
            splits[split] = self._generate_examples([os.path.join(folder, n) for n in names], labels)
        return splits

    def _generate_examples(self, paths, labels):
        for path, label in zip(paths, labels):
            yield os.path.basename(path), {"image": path, "label": int(label)}


def prepare(name, manual_dir, data_dir=None, config=None):
    """Prepares builder ``name`` ('mnist_m_recipe' or 'mnist_m_release') from ``manual_dir``; no network.

    ``config``: a ``MnistMRecipeConfig`` (other sizes or seed) for the recipe. Returns the builder.
    """
    builders = {"mnist_m_recipe": MnistMRecipe, "mnist_m_release": MnistMRelease}
    if name not in builders:
        raise UserError(f"expected one of {BUILDERS}, got {name!r}")
    if not os.path.isdir(manual_dir):
        raise MissingFileError(f"{name}: manual_dir {manual_dir} is not a folder")
    kwargs = {"config": config} if config is not None else {}
    builder = builders[name](data_dir=data_dir, **kwargs)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=manual_dir, try_download_gcs=False))
    return builder


def main(argv):
    if len(argv) not in (3, 4) or argv[1] not in BUILDERS:
        print("usage: python -m daaa_tf.data.tfds_mnist_m {mnist_m_recipe|mnist_m_release} MANUAL_DIR [DATA_DIR]",
              file=sys.stderr)
        return 2
    try:
        builder = prepare(argv[1], argv[2], argv[3] if len(argv) == 4 else None)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{argv[1]} prepared in {builder.data_dir} ({dict(builder.info.splits)}); read it with "
          f"--target=tfds:{argv[1]} and TFDS_DATA_DIR={builder.data_dir_root}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
