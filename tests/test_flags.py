"""Flags generated from daaa_tf.config: defaults, the shipped flagfiles, --helpshort, cross-flag checks, flags.txt."""

import dataclasses
import glob
import os
import subprocess
import sys

import pytest

from daaa_tf import config
from trainers import flags as tflags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "**", "*.flags"), recursive=True))


def cli(module, *args, cwd=ROOT):
    env = {**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_generated_flags_have_the_dataclass_defaults_and_demo_flags_repeats_them():
    tflags.define_flags(*config.STAGES)
    fields = config.all_flags()
    for name, f in fields.items():
        assert config.convert(f, tflags.FLAGS[name].default) == f.default, name
        assert tflags.FLAGS[name].help.endswith(f.metadata["help"]), name
    for cls in config.STAGES:  # one flag never carries two defaults
        for name, f in config.flag_fields(cls):
            assert f.default == fields[name].default and f.metadata["help"] == fields[name].metadata["help"], name
    with open(os.path.join(ROOT, "configs", "demo.flags")) as fh:
        lines = [line.strip() for line in fh if line.startswith("--")]
    assert len(lines) > 30
    for line in lines:
        name, _, value = line[2:].partition("=")
        if name == "run_dir":
            continue
        parsed = config.convert(fields[name], tflags.FLAGS[name].parser.parse(value))
        assert parsed == fields[name].default, line


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: os.path.relpath(p, ROOT))
def test_every_shipped_flagfile_parses(path):
    for module in ("trainers.pipeline", "trainers.adapt", "export.tflite"):
        out = cli(module, f"--flagfile={os.path.relpath(path, ROOT)}", "--only_check_args")
        assert out.returncode == 0, (module, out.stderr[-1500:])


def test_office31_flagfile_from_the_root_and_from_its_folder():
    assert cli("trainers.adapt", "--flagfile=configs/office31/d2a.flags", "--only_check_args").returncode == 0
    here = os.path.join(ROOT, "configs", "office31")
    out = cli("trainers.adapt", "--flagfile=d2a.flags", "--only_check_args", cwd=here)
    assert out.returncode == 0, out.stderr[-1500:]
    gan = tflags.expand_flagfiles(["--flagfile=configs/office31/d2a.flags"])
    assert "--gen_width=64" in gan and "--gen_blocks=9" in gan and "--run_dir=runs/office31_d2a" in gan


def test_nested_flagfile_resolves_beside_the_including_file(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "inner.flags").write_text("# a comment\n--beta=0.5\n")
    (tmp_path / "a" / "outer.flags").write_text("--flagfile=inner.flags\n\n--seed=3\n")
    monkeypatch.chdir(tmp_path)
    assert tflags.expand_flagfiles(["--flagfile=a/outer.flags", "--lr=1"]) == ["--beta=0.5", "--seed=3", "--lr=1"]
    (tmp_path / "a" / "loop.flags").write_text("--flagfile=loop.flags\n")
    with pytest.raises(tflags.flags.Error, match="includes itself"):
        tflags.expand_flagfiles(["--flagfile=a/loop.flags"])


def test_helpshort_lists_the_entry_points_own_flags():
    out = cli("trainers.adapt", "--helpshort")
    assert "--beta" in out.stdout and "--sync_every" in out.stdout and "--proportions" in out.stdout
    assert "--cyclegan_steps" not in out.stdout and "--revgrad_gamma" not in out.stdout
    gan = cli("trainers.cyclegan", "--helpshort").stdout
    assert "--gen_width" in gan and "--beta" not in gan


@pytest.mark.parametrize("args, flag", [
    (["--proportions=0.5,0.5,0.5,0.5"], "--proportions"),
    (["--proportions=nan,0.35,0.35,0.3"], "--proportions"),
    (["--proportions=0.5,0.5"], "--proportions"),
    (["--profile_steps=9,3"], "--profile_steps"),
    (["--streams=s,x"], "--streams"),
    (["--beta=-1"], "--beta"),
    (["--no_such_flag=1"], "no_such_flag"),
    (["--flagfile=configs/nowhere.flags"], "nowhere.flags"),
    (["--variants=full,bogus"], "--variants"),
    (["--revgrad_hidden=8,0"], "--revgrad_hidden"),
    (["--tflite_formats=float,fp16"], "--tflite_formats"),
])
def test_bad_values_fail_the_check_with_status_2_and_one_line(args, flag):
    out = cli("trainers.pipeline", *args, "--only_check_args")
    assert out.returncode == 2, out.stderr[-1500:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and flag in lines[0], out.stderr


def test_other_stages_flags_are_accepted_and_ignored():
    out = cli("trainers.source", "--cyclegan_steps=3", "--norestart_lr", "--revgrad_hidden=5", "--only_check_args")
    assert out.returncode == 0, out.stderr[-1500:]


def test_flags_txt_holds_only_project_flags_with_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = config.build(config.AdaptConfig, {"run_dir": "runs/x", "target": "mnist_m:data/mnist_m",
                                            "restart_lr": False, "profile_steps": ["2", "4"]})
    path = tflags.save_flags(str(tmp_path / "out"), cfg)
    lines = open(path).read().splitlines()
    names = {line[2:].partition("=")[0] for line in lines}
    assert names - {"norestart_lr"} <= set(config.all_flags())
    assert not names & {"verbosity", "logtostderr", "only_check_args", "test_srcdir", "undefok", "flagfile"}
    assert f"--run_dir={tmp_path}/runs/x" in lines and f"--adapt_dir={tmp_path}/runs/x/adapt" in lines
    assert f"--target=mnist_m:{tmp_path}/data/mnist_m" in lines and "--norestart_lr" in lines
    assert "--profile_steps=2,4" in lines and "--proportions=0.35,0.15,0.35,0.15" in lines
    values = dict(line[2:].split("=", 1) for line in lines if "=" in line)
    replay = config.build(config.AdaptConfig, values, restart_lr=False)
    assert replay == dataclasses.replace(cfg, **{k: os.path.abspath(getattr(cfg, k)) for k in (
        "run_dir", "out_dir", "source_model", "pairs_dir")}, target=f"mnist_m:{tmp_path}/data/mnist_m")


@pytest.mark.parametrize("module", ["trainers.adapt", "trainers.revgrad"])
def test_a_stage_checks_its_own_flags(module):
    bad = {"trainers.adapt": "--proportions=0.5,0.5,0.5,0.5", "trainers.revgrad": "--revgrad_hidden=x"}[module]
    out = cli(module, bad, "--only_check_args")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert bad.split("=")[0] in out.stderr


@pytest.mark.parametrize("cls,flag,default", [(config.AdaptConfig, "adapt_precision", "float32"),
                                               (config.CycleGANConfig, "cyclegan_precision", "auto")])
def test_a_stage_precision_overrides_precision_and_otherwise_falls_back_to_it(cls, flag, default, monkeypatch):
    from daaa_tf import runtime

    monkeypatch.setattr(runtime, "native_bfloat16", lambda: True)
    default = "mixed_bfloat16" if default == "auto" else default
    assert config.build(cls, {flag: "mixed_float16", "precision": "float32"}).precision == "mixed_float16"
    assert config.build(cls, {flag: "", "precision": "mixed_bfloat16"}).precision == "mixed_bfloat16"
    assert config.build(cls, {}).precision == default  # not given at all: the dataclass default or --precision's
    assert config.build(config.SourceConfig, {flag: "mixed_float16"}).precision == "float32"  # other stages: not


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_resolved_once_into_the_config_and_its_flags(native, monkeypatch):
    from daaa_tf import runtime

    monkeypatch.setattr(runtime, "native_bfloat16", lambda: native)
    chosen = "mixed_bfloat16" if native else "float32"
    for values in ({"adapt_precision": "auto"}, {"adapt_precision": "", "precision": "auto"}):
        cfg = config.build(config.AdaptConfig, values)
        assert cfg.precision == chosen
        assert f"--adapt_precision={chosen}" in config.flag_lines(cfg)  # flags.txt names the policy run
    assert config.build(config.CycleGANConfig, {}).precision == chosen  # the stage's default is auto
    assert config.build(config.SourceConfig, {"precision": "auto"}).precision == chosen
    assert config.build(config.AdaptConfig, {"adapt_precision": "mixed_float16"}).precision == "mixed_float16"


def test_native_bfloat16_reads_the_cpu_flags():
    from daaa_tf.runtime import cpu_has_native_bfloat16

    assert cpu_has_native_bfloat16("flags\t\t: fpu sse2 avx2 avx512f amx_bf16 amx_tile\n")
    assert cpu_has_native_bfloat16("flags : fpu avx512f avx512_bf16 avx512_vnni\n")
    assert not cpu_has_native_bfloat16("flags : fpu sse2 avx2 fma\n")  # the AVX2 machine of docs/benchmark.md
    assert not cpu_has_native_bfloat16("flags : avx512bw avx512_bf16x amx_bf16_extra\n")  # whole names only


def test_consistency_config_is_the_paper_config_plus_its_stated_changes():
    """The consistency config must differ from the paper's exactly in the flags its comment names, or its measured
    figures no longer apply; and its source and CycleGAN stages must be the paper config's, fingerprint for
    fingerprint, so that copies of that run's source/, cyclegan/ and pairs/ are recognised and skipped."""
    def settings(name):
        return dict(a[2:].partition("=")[::2] for a in tflags.expand_flagfiles([f"--flagfile=configs/{name}"]))
    paper, cons = settings("mnist_to_mnistm.flags"), settings("mnist_to_mnistm_consistency.flags")
    changed = {k: v for k, v in cons.items() if paper.get(k) != v}
    assert changed == {"run_dir": "runs/mnist_to_mnistm_consistency", "augment_streams": "t",
                       "augment_cutout": "0.5", "beta": "0", "epochs": "40"}
    assert paper["noise_shape"] == "4,4,8" and set(paper) <= set(cons)
    from daaa_tf import config
    from daaa_tf.stages import fingerprint

    for cls in (config.SourceConfig, config.CycleGANConfig):
        stage = [fingerprint.settings(config.build(cls, flags_)) for flags_ in (paper, cons)]
        assert stage[0] == stage[1], cls.__name__
    adapt = [fingerprint.settings(config.build(config.AdaptConfig, flags_)) for flags_ in (paper, cons)]
    differ = {k for k in adapt[0] if adapt[0][k] != adapt[1][k]}
    assert differ == {"augment_streams", "augment_cutout", "beta", "epochs"}
