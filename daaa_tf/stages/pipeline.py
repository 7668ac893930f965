"""The whole method in one process: source -> CycleGAN + translation -> adaptation variants x seeds -> optional
RevGrad -> export -> report.

``run_pipeline(values, cfg)`` builds every stage's config from one set of flag values ({flag name: value}) and
the experiment grid (``daaa_tf.experiments``), then calls the stage functions in order. A stage whose artifacts
are complete is skipped, so rerunning after a crash continues where it stopped. Each stage writes its settings
to flags.txt in its directory (replay one stage with ``python -m trainers.<stage> --flagfile=.../flags.txt``).

A stage that fails stops the pipeline, except an export stage that finished but found formats outside their
parity bounds (status ``PARITY_FAILED_EXIT``): those formats are reported and left uninstalled, the pipeline goes
on and writes its report, pipeline.json lists them under ``export_failed`` and ``failure_line`` names them for the
final status line (``trainers.pipeline`` then exits with ``PARITY_FAILED_EXIT``).
"""

import dataclasses
import os
import time
import traceback
from collections.abc import Callable

from daaa_tf import MissingFileError, StageError, config, experiments, io
from daaa_tf.serving.contract import (
    PARITY_FILE,
    SAVED_MODEL_VERSION,
    check_export_dir,
    default_model_path,
    mark_export_dir,
)
from daaa_tf.serving.parity import PARITY_FAILED_EXIT, failed_formats
from daaa_tf.stages import fingerprint as fingerprints


@dataclasses.dataclass
class Stage:
    name: str
    run: Callable[[], object]  # raises on failure; an int return is an exit status (non-zero = failed)
    done_file: str  # the stage is complete when this file exists (and says complete, for some)
    config: object = None  # the stage's config; its flags go to <out_dir>/flags.txt before it runs
    out_dir: str = ""
    parity_stage: bool = False  # an export: PARITY_FAILED_EXIT means "finished, some formats refused"
    # the fingerprint the stage would record now (daaa_tf.stages.fingerprint), computed when the stage comes up
    # (after its upstream stages ran); None: the stage has none (export)
    fingerprint: Callable[[], dict] | None = None
    overwrite: bool = False


def adapt_dir(run_dir, variant, seed, first_seed=0):
    """The main result (full method, first seed) lives in <run_dir>/adapt, where export looks for it."""
    if variant == "full" and seed == first_seed:
        return os.path.join(run_dir, "adapt")
    return os.path.join(run_dir, "variants", variant, f"seed{seed}")


def _stage(name, fn, cfg, done_file, out_dir=None, *args, parity_stage=False):
    fp = None if parity_stage else (lambda: fingerprints.fingerprint(cfg))
    return Stage(name, lambda: fn(cfg, *args), done_file, cfg, out_dir or cfg.out_dir, parity_stage, fp,
                 bool(getattr(cfg, "overwrite", False)))


def plan(values, variants=("full",), seeds=(0,), export=True, revgrad=False):
    """The ordered stages for ``variants`` x ``seeds`` (source and CycleGAN shared by all of them) from flag
    ``values``; ValueError for an unknown variant or a bad value."""
    from daaa_tf.stages.adapt import run_adaptation
    from daaa_tf.stages.cyclegan import run_cyclegan
    from daaa_tf.stages.export import export_model
    from daaa_tf.stages.revgrad import run_revgrad
    from daaa_tf.stages.source import train_source

    variants = experiments.expand(variants)
    source = config.build(config.SourceConfig, values)
    cyclegan = config.build(config.CycleGANConfig, values)
    stages = [_stage("source", train_source, source, os.path.join(source.out_dir, "metrics.json")),
              _stage("cyclegan", run_cyclegan, cyclegan, os.path.join(cyclegan.pairs_dir, "manifest.json"))]
    for seed in seeds:
        for v in variants:
            cfg = config.build(config.AdaptConfig, values, **experiments.VARIANTS[v], seed=seed,
                               out_dir=adapt_dir(source.run_dir, v, seed, seeds[0]))
            stages.append(_stage(f"adapt {v} seed {seed}", run_adaptation, cfg,
                                 os.path.join(cfg.out_dir, "metrics.json")))
        if revgrad:
            cfg = config.build(config.RevGradConfig, values, seed=seed)
            stages.append(_stage(f"revgrad seed {seed}", run_revgrad, cfg, os.path.join(cfg.out_dir, "metrics.json")))
    if export:
        cfg = config.build(config.ExportConfig, values)
        stages.append(_stage("export saved_model", export_model, cfg,
                             os.path.join(cfg.export_dir, "saved_model", SAVED_MODEL_VERSION, "saved_model.pb"),
                             cfg.export_dir, ["saved_model"], parity_stage=True))
        stages.append(_stage("export tflite", export_model, cfg, os.path.join(cfg.export_dir, PARITY_FILE),
                             cfg.export_dir, list(cfg.tflite_formats), parity_stage=True))
    return stages


def up_to_date(stage):
    """Whether the stage's recorded fingerprint equals the one it would record now (True when it has none, or
    none is recorded: a run from before fingerprints). A different one raises the stage's one-line StageError,
    unless --overwrite (then the old run is moved aside and False: the stage starts afresh)."""
    if stage.fingerprint is None or not stage.out_dir:
        return True
    current = stage.fingerprint()
    state = fingerprints.check(stage.out_dir, current, stage.overwrite)
    if state == "overwrite":
        fingerprints.move_aside(stage.out_dir)
        return False
    # "same" also covers a raised extendable setting (more --source_epochs): run it, the stage resumes
    return state == "new" or fingerprints.same(fingerprints.recorded(stage.out_dir), current)


def is_complete(stage):
    if not io.gfile.exists(stage.done_file):
        return False
    if stage.parity_stage and not exports_current_model(stage.config):
        return False
    if stage.name in ("cyclegan", "export tflite"):  # manifest.json / parity.json say whether they are complete
        return bool((io.read_json(stage.done_file) or {}).get("complete"))
    return True


def exports_current_model(cfg):
    """Whether the export directory of ``cfg`` (an ExportConfig) holds an export of the model it would export now
    (parity.json records the exported model's sha256): after the adaptation ran again (--overwrite, more
    --epochs) the old export is stale, not done."""
    if cfg is None or not hasattr(cfg, "export_dir"):
        return True
    try:
        model = cfg.model or default_model_path(cfg.run_dir)
    except MissingFileError:
        return False  # nothing to export: the stage itself says so
    reference = (io.read_json(os.path.join(cfg.export_dir, PARITY_FILE)) or {}).get("reference") or {}
    return reference.get("model_sha256") == io.sha256_file(model)


def stale_export(cfg):
    """Whether the export directory holds a checked export of another model than the one the stage would export
    now (this run's model before the adaptation ran again, or a copied run's): the pipeline moves it aside."""
    return (cfg is not None and hasattr(cfg, "export_dir") and io.is_file(os.path.join(cfg.export_dir, PARITY_FILE))
            and not exports_current_model(cfg))


def _run_one(stage):
    """Runs one stage in this process; any failure becomes a one-line StageError (traceback in error.txt).
    Returns the stage's status: None or 0, or PARITY_FAILED_EXIT from an export stage (reported, not fatal)."""
    if stage.parity_stage and stage.out_dir:  # an export directory: never one of the user's own folders
        check_export_dir(stage.out_dir)
        if stale_export(stage.config):  # kept, not overwritten: nothing a user produced is lost
            fingerprints.move_aside(stage.out_dir)
        mark_export_dir(stage.out_dir)
    if stage.config is not None and stage.out_dir:
        io.write_text(os.path.join(stage.out_dir, "flags.txt"), "\n".join(fingerprints.flag_lines(stage.config)) + "\n")
    try:
        status = stage.run()
    except Exception as e:  # noqa: BLE001  (reported as one line; the traceback is kept in a file)
        where = stage.out_dir or os.getcwd()
        io.write_text(os.path.join(where, "error.txt"), traceback.format_exc())
        raise StageError(f"stage {stage.name!r} failed: {type(e).__name__}: {' '.join(str(e).split())} (traceback "
                         f"in {os.path.join(where, 'error.txt')}); fix the cause and rerun the pipeline: completed "
                         "stages are skipped") from None
    if isinstance(status, int) and status == PARITY_FAILED_EXIT and stage.parity_stage:
        return status
    if isinstance(status, int) and status:
        raise StageError(f"stage {stage.name!r} failed (status {status}, see above); fix the cause and rerun the "
                         "pipeline: completed stages are skipped")


def run(stages, log=print):
    """Runs the stages in order, skipping a complete one whose fingerprint is unchanged (checked when the stage
    comes up, so a rerun upstream stage invalidates what depends on it); a changed one stops the pipeline with one
    line (StageError) unless --overwrite. Returns {stage name: seconds} (0 for skipped ones)."""
    times, start = {}, time.time()
    for i, stage in enumerate(stages, 1):
        if up_to_date(stage) and is_complete(stage):
            log(f"[{i}/{len(stages)}] {stage.name}: complete, skipped ({stage.done_file})")
            times[stage.name] = 0.0
            continue
        # no pipeline-wide time estimate: the stages' costs differ by far more than their number (the CycleGAN
        # takes most of it); each stage's own progress bar estimates its time
        after = [s.name for s in stages[i:]]
        log(f"[{i}/{len(stages)}] {stage.name}: running ({(time.time() - start) / 60:.1f} min elapsed; "
            f"{'then ' + ', '.join(after) if after else 'the last stage'})")
        t0 = time.time()
        if _run_one(stage) == PARITY_FAILED_EXIT:
            log(f"[{i}/{len(stages)}] {stage.name}: formats outside their parity bounds were not installed; "
                "going on (the report is still written)")
        times[stage.name] = time.time() - t0
        log(f"[{i}/{len(stages)}] {stage.name}: done in {times[stage.name] / 60:.1f} min")
        _reset_keras()
    return times


def failed_exports(run_dir, export_dir=None):
    """Formats that ``<export_dir>/parity.json`` (default <run_dir>/export) records outside their bounds (not
    installed)."""
    export_dir = export_dir or os.path.join(run_dir, "export")
    return failed_formats(io.read_json(os.path.join(export_dir, PARITY_FILE), {}))


def failure_line(run_dir, failed, export_dir=None):
    """The pipeline's last line when exports failed their parity bounds."""
    table = os.path.join(export_dir or os.path.join(run_dir, "export"), PARITY_FILE)
    return (f"error: export {', '.join(failed)} outside the parity bounds, not installed (see {table}); "
            "the rest of the run and its report are complete")


def _reset_keras():
    """Frees the finished stage's models and restores the float32 dtype policy, as a fresh process has it (each
    stage sets its own seed and policy; ``daaa_tf.runtime`` keeps one MirroredStrategy per process)."""
    import keras

    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("float32")


def run_pipeline(values, cfg, log=print):
    """The whole method for a ``daaa_tf.config.PipelineConfig`` and the stages' flag ``values``: writes
    <run_dir>/pipeline.flags (every setting, replayable), runs the stages, <run_dir>/pipeline.json and the report.
    Returns the path of results.md; formats an export left outside their parity bounds are listed under
    ``export_failed`` in pipeline.json (see ``failure_line``)."""
    from daaa_tf.report.tables import make_report

    values = {**values, "run_dir": cfg.run_dir}
    stages = plan(values, cfg.variants, tuple(range(cfg.seed, cfg.seed + cfg.seeds)), cfg.export, cfg.revgrad)
    io.gfile.makedirs(cfg.run_dir)
    configs = [stages[0].config, stages[1].config, config.build(config.AdaptConfig, values), cfg]
    configs += [s.config for s in stages if s.name.startswith(("revgrad", "export"))]
    lines = dict.fromkeys(line for c in configs for line in fingerprints.flag_lines(c))  # no --overwrite
    io.write_text(os.path.join(cfg.run_dir, "pipeline.flags"), "\n".join(lines) + "\n")
    times = run(stages, log)
    exports = [s.config for s in stages if s.parity_stage]
    failed = failed_exports(cfg.run_dir, exports[0].export_dir) if exports else []
    io.write_json(os.path.join(cfg.run_dir, "pipeline.json"), {"stage_seconds": times, "export_failed": failed})
    make_report(cfg.run_dir)
    return os.path.join(cfg.run_dir, "results.md")
