"""Builds an MNIST-M-style target domain from MNIST and photographs (Ganin & Lempitsky's recipe).

    python -m trainers.make_mnist_m --mnist=../shared/data/mnist --out=data/mnist_m_dev
    python -m trainers.make_mnist_m --mnist=../shared/data/mnist --photo_views=recoloured --out=data/mnist_m_hard
    python -m trainers.make_mnist_m --mnist=../shared/data/mnist --photos=dead_leaves --out=data/mnist_m_leaves

writes the standard MNIST-M release layout (59,001 train / 9,001 test PNGs and labels files) with patches of
the colour photographs that installed packages ship, or of any folder of photos (``--photos=DIR``). Read it
with ``--target=mnist_m:data/mnist_m_dev``. Full-scale experiments only: the tests and the demo never need it.
"""

from absl import flags

from daaa_tf.data import mnist_m_recipe
from trainers import flags as tflags

flags.DEFINE_string("mnist", None, "folder with the four MNIST idx files (the digits)")
flags.DEFINE_string("out", None, "output folder (the MNIST-M release layout)")
flags.DEFINE_string("photos", "packaged", "'packaged' (photos shipped in scikit-image, scikit-learn, "
                    "matplotlib), 'dead_leaves' (dead-leaves images coloured from the packaged photos, "
                    "docs/benchmark.md) or a folder of colour photographs")
flags.DEFINE_enum("photo_views", "original", mnist_m_recipe.PHOTO_VIEWS,
                  "'original' (each photo as it is) or 'recoloured': each photo in its 6 channel orders, as it "
                  "is, negative and at half size (18 views; a harder target, as hard as the real release for the "
                  "source network, docs/benchmark.md)")
flags.DEFINE_integer("dead_leaves_count", mnist_m_recipe.DEAD_LEAVES_COUNT,
                     "--photos=dead_leaves: how many images (BSDS500 has 500)", lower_bound=1)
flags.DEFINE_integer("train_size", 59001, "train images (the first N MNIST train digits)", lower_bound=1)
flags.DEFINE_integer("test_size", 9001, "test images (the first N MNIST test digits)", lower_bound=1)
flags.DEFINE_integer("seed", 0, "seed of the patch positions and photo choice")
flags.mark_flags_as_required(["mnist", "out"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    if FLAGS.photos == "packaged":
        photos = mnist_m_recipe.packaged_photos()
    elif FLAGS.photos == "dead_leaves":
        photos = mnist_m_recipe.dead_leaves_photos(mnist_m_recipe.packaged_photos(),
                                                   FLAGS.dead_leaves_count, FLAGS.seed)
    else:
        photos = mnist_m_recipe.folder_photos(FLAGS.photos)
    photos = mnist_m_recipe.photo_views(photos, FLAGS.photo_views)
    written = mnist_m_recipe.build_release(FLAGS.mnist, FLAGS.out, photos,
                                           {"train": FLAGS.train_size, "test": FLAGS.test_size}, FLAGS.seed)
    print(f"{FLAGS.out}: {written} images over {len(photos)} photographs; read it with "
          f"--target=mnist_m:{FLAGS.out}")


if __name__ == "__main__":
    tflags.run_main(main)  # bad input (--photos, --mnist, sizes): one error line, status 2
