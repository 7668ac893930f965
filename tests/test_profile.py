"""--profile_steps writes a TensorBoard profile trace (``*.xplane.pb``) in every trainer: source, CycleGAN,
adaptation and RevGrad (tiny data, two profiled steps each)."""

import glob
import os

import numpy as np
import pytest
from PIL import Image

from daaa_tf import runtime
from daaa_tf.config import AdaptConfig, CycleGANConfig, RevGradConfig, SourceConfig
from daaa_tf.data.pair_writer import write_pair_shards

SIZE = 16


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """An MNIST-M-layout folder (12 images per split), a source model trained by the source stage, pair shards."""
    from daaa_tf.stages.source import train_source

    root = tmp_path_factory.mktemp("profile")
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        (root / "mm" / f"mnist_m_{split}").mkdir(parents=True)
        lines = []
        for i in range(12):
            name = f"{i:08d}.png"
            Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(
                root / "mm" / f"mnist_m_{split}" / name)
            lines.append(f"{name} {i % 10}")
        (root / "mm" / f"mnist_m_{split}_labels.txt").write_text("\n".join(lines) + "\n")
    domain = f"mnist_m:{root / 'mm'}"
    run = str(root / "run")
    source_cfg = SourceConfig(run_dir=run, source=domain, target=domain, image_size=SIZE, epochs=1, batch_size=4,
                              eval_batch_size=8, profile_steps=(1, 2))
    train_source(source_cfg)
    runtime.set_seed(0)
    for kind in ("source", "target"):
        images = rng.integers(0, 256, (16, SIZE, SIZE, 3), dtype=np.uint8)
        write_pair_shards(os.path.join(run, "pairs"), kind, images, 255 - images, np.arange(16) % 10)
    return {"run": run, "domain": domain}


def traces(stage_dir):
    return glob.glob(os.path.join(stage_dir, "tensorboard", "**", "*.xplane.pb"), recursive=True)


def test_source_stage_writes_a_profile(tiny):
    found = traces(os.path.join(tiny["run"], "source"))
    assert len(found) == 1 and "/tensorboard/train/plugins/profile/" in found[0], found


def test_adaptation_writes_a_profile_and_none_without_the_flag(tiny, tmp_path):
    from daaa_tf.stages.adapt import run_adaptation

    def cfg(out, profile):
        return AdaptConfig(run_dir=tiny["run"], out_dir=str(out), target=tiny["domain"], image_size=SIZE,
                           batch_size=8, proportions=(0.25, 0.25, 0.25, 0.25), epochs=1, steps_per_epoch=3,
                           sync_every=2, eval_batch_size=8, num_attention_images=2, profile_steps=profile)

    run_adaptation(cfg(tmp_path / "adapt", (2, 3)))
    assert len(traces(str(tmp_path / "adapt"))) == 1
    run_adaptation(cfg(tmp_path / "plain", ()))
    assert traces(str(tmp_path / "plain")) == []


def test_revgrad_writes_a_profile(tiny, tmp_path):
    from daaa_tf.stages.revgrad import run_revgrad

    run_revgrad(RevGradConfig(run_dir=tiny["run"], out_dir=str(tmp_path / "revgrad"), source=tiny["domain"],
                              target=tiny["domain"], image_size=SIZE, batch_size=8, epochs=1, steps_per_epoch=3,
                              eval_batch_size=8, profile_steps=(1, 2)))
    assert len(traces(str(tmp_path / "revgrad"))) == 1


def test_cyclegan_writes_a_profile(tiny, tmp_path):
    from daaa_tf.stages.cyclegan import run_cyclegan

    run_cyclegan(CycleGANConfig(run_dir=tiny["run"], out_dir=str(tmp_path / "cyclegan"),
                                pairs_dir=str(tmp_path / "pairs"), source=tiny["domain"], target=tiny["domain"],
                                image_size=SIZE, steps=3, steps_per_epoch=3, batch_size=2, gen_width=4, gen_blocks=1,
                                disc_width=4, disc_layers=1, pool_size=0, precision="float32",
                                profile_steps=(1, 2)), log=lambda msg: None)
    assert len(traces(str(tmp_path / "cyclegan"))) == 1
