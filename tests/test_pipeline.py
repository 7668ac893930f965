"""The pipeline's plan and its skip-completed logic."""

import json
import os
import sys

import pytest

from daaa_tf.stages import pipeline as pl


def test_plan_shares_source_and_cyclegan_and_lays_out_variants(tmp_path):
    stages = pl.plan(str(tmp_path), ("S", "full"), seeds=(0, 1), export=True, revgrad=True)
    names = [s.name for s in stages]
    assert names[:2] == ["source", "cyclegan"]
    assert names.count("source") == 1 and names.count("cyclegan") == 1
    assert names[-2:] == ["export saved_model", "export tflite"]
    adapt = {s.name: s for s in stages if s.module == "trainers.adapt"}
    assert set(adapt) == {"adapt S seed 0", "adapt full seed 0", "adapt S seed 1", "adapt full seed 1"}
    assert f"--adapt_dir={tmp_path}/adapt" in adapt["adapt full seed 0"].args
    assert f"--adapt_dir={tmp_path}/variants/full/seed1" in adapt["adapt full seed 1"].args
    assert "--streams=s" in adapt["adapt S seed 1"].args and "--seed=1" in adapt["adapt S seed 1"].args
    assert sum(s.module == "trainers.revgrad" for s in stages) == 2
    with pytest.raises(ValueError, match="--variants"):
        pl.plan(str(tmp_path), ("nonsense",))


def test_run_skips_completed_stages_and_reports_a_failed_one(tmp_path, capsys):
    done = tmp_path / "done.json"
    done.write_text("{}")
    incomplete_manifest = tmp_path / "manifest.json"
    incomplete_manifest.write_text(json.dumps({"complete": False}))
    marker = tmp_path / "ran.txt"
    script = tmp_path / "mark_stage.py"
    script.write_text(f"import sys\nopen({str(marker)!r}, 'a').write(sys.argv[1] + '\\n')\n")
    sys.path.insert(0, str(tmp_path))
    try:
        stages = [pl.Stage("source", "mark_stage", str(done)),
                  pl.Stage("cyclegan", "mark_stage", str(incomplete_manifest)),
                  pl.Stage("adapt full seed 0", "mark_stage", str(tmp_path / "missing.json"))]
        env_path = os.environ.get("PYTHONPATH", "")
        os.environ["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{env_path}"
        times = pl.run(stages, flagfile="flags.txt", log=print)
        assert times["source"] == 0.0 and times["cyclegan"] > 0 and times["adapt full seed 0"] > 0
        assert marker.read_text().splitlines() == ["--flagfile=flags.txt", "--flagfile=flags.txt"]
        assert "source: complete, skipped" in capsys.readouterr().out
        with pytest.raises(RuntimeError, match="stage 'bad' failed"):
            pl.run([pl.Stage("bad", "no_such_module_here", str(tmp_path / "x"))], "flags.txt", log=print)
    finally:
        sys.path.remove(str(tmp_path))
        os.environ["PYTHONPATH"] = env_path
