"""Classifies images with an exported model; optionally writes attention overlays (the paper's Fig. 5).

  python -m export.predict --model=runs/demo/export/saved_model a.png b.jpg [--attention_out=DIR]
  python -m export.predict --model=runs/demo/export/model_int8.tflite a.png

Prints one line per image: its class and probability. Images of another size or with other channels are
converted (with a note); an unreadable image gets one error line and the others still run (exit status 2).
Attention maps come from the SavedModel (beside the .tflite file when --model is one).
"""

import os
import sys

from daaa_tf import UserError
from daaa_tf.config import PredictConfig
from trainers import flags as tflags


def main(argv):
    from daaa_tf.serving import overlay
    from daaa_tf.serving import runners as predicting
    from daaa_tf.serving.contract import SAVED_MODEL

    paths = argv[1:]
    if not paths:
        raise UserError("no images given: python -m export.predict --model=MODEL image.png ...")
    cfg = tflags.from_flags(PredictConfig)
    model_path = cfg.model or os.path.join(cfg.export_dir, SAVED_MODEL)
    runner = predicting.load_runner(model_path)
    attention = predicting.attention_runner(runner) if cfg.attention_out else None
    if attention is not None and attention is not runner:
        print(f"note: attention maps from the SavedModel {attention.path}", file=sys.stderr)
    names = runner.class_names
    failed = 0
    for path in paths:
        try:
            image, notes = overlay.read_image(path, runner.image_size)
        except (ValueError, FileNotFoundError) as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
            continue
        for note in notes:
            print(f"note: {path}: {note}", file=sys.stderr)
        probabilities, class_ids = runner(image[None])
        cid = int(class_ids[0])
        name = names[cid] if names and cid < len(names) else str(cid)
        label = f"class {cid}" if name == str(cid) else f"{name} (class {cid})"
        line = f"{path}: {label}  p={float(probabilities[0, cid]):.4f}"
        if attention is not None:
            maps = {k: v[0] for k, v in attention.attention(image[None]).items()}
            stem = os.path.splitext(os.path.basename(path))[0]
            out = os.path.join(cfg.attention_out, f"{stem}_attention.png")
            os.makedirs(cfg.attention_out, exist_ok=True)
            overlay.save_overlay(out, image, overlay.select_maps(maps, cfg.max_attention_maps),
                                 title=f"{label} p={float(probabilities[0, cid]):.2f}")
            line += f"  attention: {out}"
        print(line, flush=True)
    if failed:
        tflags.fail(f"{failed} of {len(paths)} image(s) could not be read")
    return 0


if __name__ == "__main__":
    tflags.define_flags(PredictConfig)
    tflags.run_main(main)
