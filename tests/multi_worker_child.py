"""One worker process of tests/test_multi_worker.py: runs a stage under --strategy=multi_worker (TF_CONFIG set by
the test). argv[1] is JSON: {"stage": "adapt" | "source", "cfg": {field: value}, "pause": [worker index, epoch]};
with ``pause`` that worker writes ``<out_dir>/../paused.<index>`` after that epoch's backup and sleeps (so the test
can kill it at a known point; the other workers go on and wait for it in the next collective)."""

import json
import os
import sys
import time

import keras


class Pause(keras.callbacks.Callback):
    def __init__(self, epoch, marker):
        super().__init__()
        self.epoch, self.marker = epoch, marker

    def on_epoch_end(self, epoch, logs=None):  # runs after the stage's Backup callback
        if epoch + 1 == self.epoch:
            with open(self.marker, "w") as f:
                f.write(str(epoch + 1))
            time.sleep(600)


def main():
    job = json.loads(sys.argv[1])
    cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in job["cfg"].items()}
    cfg["strategy"] = "multi_worker"
    if job["stage"] == "source":
        from daaa_tf.stages.source import SourceConfig, train_source

        train_source(SourceConfig(**cfg))
        return
    from daaa_tf.stages.adapt import AdaptConfig, run_adaptation

    extra = []
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    if job.get("pause") and job["pause"][0] == index:
        marker = os.path.join(os.path.dirname(os.path.normpath(cfg["out_dir"])), f"paused.{index}")
        extra.append(Pause(job["pause"][1], marker))
    run_adaptation(AdaptConfig(**cfg), extra_callbacks=extra)


if __name__ == "__main__":
    main()
