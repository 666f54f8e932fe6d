import pytest

from tfdl.config import apply_overrides, load_config, parse_config, resolve_config_path, shipped_configs
from tfdl.schema import ConfigError


def test_default_config_is_the_shipped_digits_cnn():
    config = load_config()
    assert config.name == "digits_cnn"
    assert config.data.source.name == "digits"
    assert config.model.name == "cnn"
    assert "digits_cnn" in shipped_configs()


def test_shipped_config_resolves_by_name_and_by_repo_path_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_config_path("digits_cnn").name == "digits_cnn.yaml"
    assert resolve_config_path("configs/digits_cnn.yaml").name == "digits_cnn.yaml"


def test_overrides_are_parsed_as_yaml():
    config = load_config(None, ["training.epochs=3", "model.params.filters=[8, 16]", "training.early_stopping=null"])
    assert config.training.epochs == 3
    assert config.model.params["filters"] == [8, 16]
    assert config.training.early_stopping is None


@pytest.mark.parametrize(
    "override, named",
    [
        ("training.epoch=3", "training.epoch: unknown field"),
        ("training.epochs=0", "training.epochs"),
        ("data.split.test=1.5", "data.split.test"),
        ("training.optimizer.name=adamm", "training.optimizer.name"),
        ("model.params.filtres=[8]", "model.params.filtres: unknown field"),
        ("model.params.dropout=2", "model.params.dropout"),
        ("model.name=no_such_model", "model.name: unknown model 'no_such_model'"),
        ("export.model_name=a/b", "export.model_name"),
    ],
)
def test_a_bad_field_fails_with_its_dotted_name(override, named):
    with pytest.raises(ConfigError) as error:
        load_config(None, [override])
    assert named in str(error.value)


def test_model_params_that_contradict_each_other_are_rejected():
    with pytest.raises(ConfigError, match="image_shape"):
        load_config(None, ["model.params.input_shape=[64]", "model.params.image_shape=[4, 4, 1]"])


def test_missing_config_names_the_shipped_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="digits_cnn"):
        resolve_config_path("nope.yaml")


def test_a_yaml_file_that_is_not_a_mapping_is_rejected(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(path)


def test_malformed_override_says_the_expected_form():
    with pytest.raises(ConfigError, match="section.field=value"):
        apply_overrides({}, ["training.epochs"])


def test_name_is_required():
    with pytest.raises(ConfigError, match="name"):
        parse_config({"seed": 1})


def test_a_model_tfdl_run_cannot_train_yet_is_refused_before_any_work(tmp_path):
    from tfdl.run import run

    config = load_config(None, ["model.name=seq2seq", "model.params={source_vocabulary_size: 10, target_vocabulary_size: 10}"])
    with pytest.raises(ConfigError, match="seq2seq"):
        run(config, output_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", shipped_configs())
def test_every_shipped_config_loads_and_its_model_params_check(name):
    from tfdl.models.registry import check_model_params

    config = load_config(name)
    assert config.name == name
    check_model_params(config.model.name, dict(config.model.params))
