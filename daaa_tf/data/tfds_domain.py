"""``tfds:NAME``: an already-prepared TensorFlow Datasets dataset (e.g. ``tfds:mnist``).

Never downloads: tfds retries the network for minutes when it is unreachable, so an unprepared dataset
fails at once with a one-line error saying how to prepare it.
"""

import os

import tensorflow as tf

from daaa_tf import MissingFileError, UserError
from daaa_tf.data.domains import Domain, check_split


def load_tfds(name, split, image_size=32, data_dir=None):
    import tensorflow_datasets as tfds

    from daaa_tf.data import tfds_mnist_m  # registers tfds:mnist_m_recipe and tfds:mnist_m_release

    spec = f"tfds:{name}"
    check_split(spec, split)
    if not name:
        raise UserError("tfds:NAME: missing dataset name (e.g. tfds:mnist)")
    data_dir = data_dir or os.environ.get("TFDS_DATA_DIR") or None
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as e:  # DatasetNotFoundError and friends; only the message matters
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{spec}: not a TensorFlow Datasets dataset ({first})") from None
    if not builder.is_prepared():
        base = str(getattr(builder, "data_dir_root", None) or builder.data_dir)
        bare = name.split("/")[0].split(":")[0]
        if bare in tfds_mnist_m.BUILDERS:  # made from local files (manual_dir), not downloaded
            hint = tfds_mnist_m.PREPARE_HINT.format(name=bare, instructions=builder.MANUAL_DOWNLOAD_INSTRUCTIONS)
            raise MissingFileError(f"{spec} is not prepared in {base}: {hint}")
        raise MissingFileError(
            f"{spec} is not downloaded in {base} and this machine cannot download it; run `tfds build "
            f"{name.split(':')[0]}` on a machine with internet (and copy {base}), or pass a local "
            "directory such as --source=mnist:DIR")
    info = builder.info
    if split not in info.splits:
        raise UserError(f"{spec}: has splits {sorted(info.splits)}, not {split!r}")
    if not info.supervised_keys:
        raise UserError(f"{spec}: has no (image, label) supervised keys")
    label_feature = info.features[info.supervised_keys[1]]
    class_names = list(getattr(label_feature, "names", None) or range(label_feature.num_classes))

    def make_dataset():
        ds = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)

        def convert(image, label):
            if image.shape[-1] == 1:
                image = tf.image.grayscale_to_rgb(image)
            image = tf.image.resize(image[..., :3], [image_size, image_size], antialias=True)
            image = tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)
            return image, tf.cast(label, tf.int32)

        return ds.map(convert, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    return Domain(spec, split, [str(c) for c in class_names], image_size, make_dataset=make_dataset,
                  num_examples=info.splits[split].num_examples)
