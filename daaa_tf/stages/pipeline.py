"""The whole method as one plan of stages (source -> CycleGAN + translation -> adaptation variants -> export).

Each stage runs as its own process (``python -m trainers.<stage> --flagfile=<run_dir>/pipeline.flags
<overrides>``) so that TF global state (dtype policy, strategy) never leaks between stages, and a stage whose
artifacts are complete is skipped, so rerunning the pipeline after a crash continues where it stopped.

A stage that fails stops the pipeline, except an export stage that finished but found formats outside their
parity bounds (exit status ``PARITY_FAILED_EXIT``): those formats are reported and left uninstalled, the
pipeline goes on and writes its report, and ``failed_exports`` names them for the final status line.
"""

import dataclasses
import os
import subprocess
import sys
import time

from daaa_tf import StageError, io
from daaa_tf.serving.parity import PARITY_FAILED_EXIT, PARITY_FILE, failed_formats

# Table 1 / Table 3 / Table 4 variants as flag overrides of the adaptation stage.
VARIANTS = {
    "S": ["--streams=s", "--beta=0"],
    "Tf": ["--streams=tf", "--beta=0"],
    "S+Tf": ["--streams=s,tf", "--beta=0"],
    "S+Tf+AT": ["--streams=s,tf"],
    "full-noAT": ["--beta=0"],
    "full": [],
    "EM-A": ["--sync_every=1"],
    "EM-B": ["--threshold=0"],
    "EM-C": ["--norestart_lr"],
    "AT-l1": ["--attention_criterion=l1"],
    "AT-mmd": ["--attention_criterion=mmd"],
    "AT-jmmd": ["--attention_criterion=jmmd"],
}
TABLE1 = ("S", "Tf", "S+Tf", "S+Tf+AT", "full-noAT", "full")


@dataclasses.dataclass
class Stage:
    name: str
    module: str
    done_file: str  # the stage is complete when this file exists
    args: tuple = ()
    parity_stage: bool = False  # an export: PARITY_FAILED_EXIT means "finished, some formats refused"


def adapt_dir(run_dir, variant, seed, first_seed=0):
    """The main result (full method, first seed) lives in <run_dir>/adapt, where export looks for it."""
    if variant == "full" and seed == first_seed:
        return os.path.join(run_dir, "adapt")
    return os.path.join(run_dir, "variants", variant, f"seed{seed}")


def plan(run_dir, variants=("full",), seeds=(0,), export=True, revgrad=False):
    """The ordered stages for ``variants`` x ``seeds`` (source and CycleGAN shared by all of them)."""
    for v in variants:
        if v not in VARIANTS:
            raise ValueError(f"--variants: unknown variant {v!r}; expected some of {', '.join(VARIANTS)}")
    stages = [Stage("source", "trainers.source", os.path.join(run_dir, "source", "metrics.json")),
              Stage("cyclegan", "trainers.cyclegan", os.path.join(run_dir, "pairs", "manifest.json"))]
    for seed in seeds:
        for v in variants:
            out = adapt_dir(run_dir, v, seed, seeds[0])
            stages.append(Stage(f"adapt {v} seed {seed}", "trainers.adapt", os.path.join(out, "metrics.json"),
                                (f"--adapt_dir={out}", f"--seed={seed}", *VARIANTS[v])))
        if revgrad:
            out = os.path.join(run_dir, "variants", "RevGrad", f"seed{seed}")
            stages.append(Stage(f"revgrad seed {seed}", "trainers.revgrad", os.path.join(out, "metrics.json"),
                                (f"--adapt_dir={out}", f"--seed={seed}")))
    if export:
        stages.append(Stage("export saved_model", "export.saved_model",
                            os.path.join(run_dir, "export", "saved_model", "saved_model.pb"), parity_stage=True))
        stages.append(Stage("export tflite", "export.tflite", os.path.join(run_dir, "export", PARITY_FILE),
                            parity_stage=True))
    return stages


def is_complete(stage):
    if not os.path.exists(stage.done_file):
        return False
    if stage.name in ("cyclegan", "export tflite"):  # manifest.json / parity.json say whether they are complete
        return bool((io.read_json(stage.done_file) or {}).get("complete"))
    return True


def run(stages, flagfile, log=print):
    """Runs the incomplete stages in order; returns {stage name: seconds} (0 for skipped ones)."""
    todo = [s for s in stages if not is_complete(s)]
    times, start = {}, time.time()
    for i, stage in enumerate(stages, 1):
        if stage not in todo:
            log(f"[{i}/{len(stages)}] {stage.name}: complete, skipped ({stage.done_file})")
            times[stage.name] = 0.0
            continue
        done = [t for n, t in times.items() if t > 0]
        eta = ""
        if done:
            remaining = sum(1 for s in todo if s.name not in times)
            eta = f", about {sum(done) / len(done) * remaining / 60:.0f} min left at this pace"
        log(f"[{i}/{len(stages)}] {stage.name}: running python -m {stage.module} "
            f"({(time.time() - start) / 60:.1f} min elapsed{eta})")
        t0 = time.time()
        cmd = [sys.executable, "-m", stage.module, f"--flagfile={flagfile}", *stage.args]
        result = subprocess.run(cmd)
        if result.returncode == PARITY_FAILED_EXIT and stage.parity_stage:
            log(f"[{i}/{len(stages)}] {stage.name}: formats outside their parity bounds were not installed; "
                "going on (the report is still written)")
        elif result.returncode:
            raise StageError(f"stage {stage.name!r} failed (exit {result.returncode}): {' '.join(cmd)}; "
                               "fix the cause and rerun the pipeline: completed stages are skipped")
        times[stage.name] = time.time() - t0
    return times


def failed_exports(run_dir):
    """Formats that ``<run_dir>/export/parity.json`` records outside their bounds (not installed)."""
    return failed_formats(io.read_json(os.path.join(run_dir, "export", PARITY_FILE), {}))


def failure_line(run_dir, failed):
    """The pipeline's last line when exports failed their parity bounds."""
    table = os.path.join(run_dir, "export", PARITY_FILE)
    return (f"error: export {', '.join(failed)} outside the parity bounds, not installed (see {table}); "
            "the rest of the run and its report are complete")
