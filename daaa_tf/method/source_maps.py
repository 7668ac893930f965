"""The frozen source network's attention maps (Eq. 4) of every pair image it reads in L_AT, computed once.

L_AT (Eq. 5) puts x_s and x~s = G_TS(x_t) through the source network, which never changes during adaptation, and
the pair shards never change either: so each image's normalised maps are the same at every step. The adaptation
stage computes them once before training (``source_map_cache``: one forward pass over the pair shards in manifest
order) and the step gathers rows by record index (``daaa_tf.data.mixing.adaptation_dataset(with_index=True)``)
instead of running the source network on [x_s; x~s] every step. The source network always sees the clean image
(``--augment_streams`` changes the target network's inputs only), so the cache holds under every setting.

Rows equal the in-step maps up to floating-point round-off (the same network and policy, other batch sizes:
oneDNN may sum in another order); tests/test_source_maps.py checks maps, L_AT and its gradient against the
uncached step. Layout: {"xs": [N_source, D], "xsf": [N_target, D]} float32, D = the sum of the taps' H*W, row i
the maps of record i of the "source" ("image") / "target" ("translated") shards, layers concatenated.
"""

import time

import numpy as np
import tensorflow as tf

from daaa_tf.data.pairs import pair_records, parse_pairs, read_manifest
from daaa_tf.method.attention import attention_map
from daaa_tf.models import preprocess

# Above this many bytes of maps the step runs the source network instead (e.g. ResNet-50 with every conv tapped
# on a large domain); the full digit run (119,001 images x 1,344 values) holds 0.64 GB.
MAX_BYTES = 4 << 30
# which pair kind and image feeds each stream the source network reads, and the batch key of its record index
STREAMS = {"xs": ("source", "image", "is"), "xsf": ("target", "translated", "isf")}
# Images per batch of the one-off pass: fixed, so that a resumed run (whatever its --eval_batch_size) rebuilds
# bit-identical maps.
BATCH = 128


def tap_widths(net):
    """[H_l * W_l] of the classifier's attention taps (the columns of each layer's block of a cached row)."""
    return [int(np.prod(t.shape[1:3])) for t in net.output["taps"]]


def concatenated_maps(net, images):
    """[N, D] float32: the normalised Eq. 4 maps of ``net``'s taps on preprocessed ``images``, layers side by side
    (the row layout of the cache)."""
    return tf.concat([attention_map(f) for f in net(images, training=False)["taps"]], axis=1)


def cache_bytes(net, pairs_dir, keys):
    counts = read_manifest(pairs_dir)["counts"]
    return 4 * sum(tap_widths(net)) * sum(int(counts[STREAMS[k][0]]) for k in keys)


def source_map_cache(net, pairs_dir, arch, keys=("xs", "xsf"), batch_size=BATCH, max_bytes=MAX_BYTES):
    """{key: float32 [N, D]} of ``keys`` (streams the step puts through ``net``), or None when that would take
    more than ``max_bytes``. Prints one line with the count and time."""
    if not keys:
        return None
    need = cache_bytes(net, pairs_dir, keys)
    if need > max_bytes:
        print(f"source network's attention maps not cached ({need / 2**30:.1f} GiB > {max_bytes / 2**30:.1f} GiB): "
              "it runs on [x_s; x~s] every step", flush=True)
        return None
    shape = tuple(read_manifest(pairs_dir)["image_shape"])

    maps = tf.function(lambda images: concatenated_maps(net, preprocess(images, arch)))

    start, out = time.time(), {}
    for key in keys:
        kind, field, _ = STREAMS[key]
        ds = pair_records(pairs_dir, kind).batch(batch_size).map(
            lambda s, field=field: parse_pairs(s, shape)[field], num_parallel_calls=tf.data.AUTOTUNE)
        out[key] = np.concatenate([maps(images).numpy() for images in ds.prefetch(2)])
    n = sum(len(v) for v in out.values())
    print(f"source network's attention maps of {n:,} pair images cached for L_AT "
          f"({sum(v.nbytes for v in out.values()) / 2**20:.0f} MiB, {time.time() - start:.0f} s)", flush=True)
    return out


class SourceMapCache:
    """The cached maps as non-trainable variables (one copy per replica under a strategy); ``lookup`` gives the
    per-layer [n, D_l] maps of a batch's records. A plain object, so Keras does not track it as model weights."""

    def __init__(self, maps, widths):
        self.widths = list(widths)
        self.tables = {k: tf.Variable(v, trainable=False, name=f"source_maps_{k}") for k, v in maps.items()}

    def covers(self, data, keys):
        return all(k in self.tables and STREAMS[k][2] in data for k in keys)

    def lookup(self, data, key):
        rows = tf.gather(self.tables[key], data[STREAMS[key][2]])
        return tf.split(rows, self.widths, axis=1)
