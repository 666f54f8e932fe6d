import subprocess
import sys
import time


def tfdl(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "tfdl", *args], capture_output=True, text=True, timeout=timeout)


def test_help_lists_the_commands_without_importing_tensorflow():
    started = time.perf_counter()
    result = tfdl("--help")
    assert result.returncode == 0
    for command in ("run", "serve", "predict"):
        assert command in result.stdout
    code = "import sys, tfdl.cli; tfdl.cli.build_parser(); print('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    assert time.perf_counter() - started < 60


def test_bad_config_fails_before_any_work_naming_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntraining:\n  epochs: 3\n  optimiser: {name: adam}\n")
    result = tfdl("run", str(bad), "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "training.optimiser: unknown field" in result.stderr
    assert "Epoch" not in result.stdout and not (tmp_path / "out").exists()


def test_bad_override_value_is_named(tmp_path):
    result = tfdl("run", "--set", "data.batch_size=-1", "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "data.batch_size" in result.stderr


def test_serve_without_a_model_says_what_to_do(tmp_path):
    result = tfdl("serve", "--model-base-path", str(tmp_path / "none"), "--port", "0")
    assert result.returncode != 0
    assert "no SavedModel version under" in result.stderr
