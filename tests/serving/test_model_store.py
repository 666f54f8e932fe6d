"""The model store: version policies, labels, status as TF Serving reports it, config files, and refresh rules."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

from tfdl.export.model_server_config import ModelEntry, write_model_server_config
from tfdl.export.serving_model import export_serving_model
from tfdl.serving.errors import InvalidArgument, NotFound
from tfdl.serving.model_config import ModelConfigError, read_model_config, select_versions
from tfdl.serving.model_store import ModelLoadError, ModelStore
from served_models import constant_model

ROW = np.ones((1, 2), "float32")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Versions 1, 2, 3 of a model answering its own version number."""
    root = tmp_path_factory.mktemp("exported")
    for version in (1, 2, 3):
        export_serving_model(constant_model(version), root / str(version), warmup={"x": np.zeros((2, 2), "float32")})
    return root


def make_base(tmp_path, exported, versions=(1, 2, 3), name="m"):
    base = tmp_path / name
    for version in versions:
        shutil.copytree(exported / str(version), base / str(version))
    return base


def answer(servable) -> float:
    return float(servable.signature(None)({"x": ROW})["y"][0, 0])


def available(*versions) -> dict:
    return {"model_version_status": [state(v, "AVAILABLE") for v in versions]}


def state(version, name, code="OK", message="") -> dict:
    return {"version": str(version), "state": name, "status": {"error_code": code, "error_message": message}}


def test_latest_two_serves_the_two_highest_versions(tmp_path, exported):
    store = ModelStore()
    servable = store.add_model("m", make_base(tmp_path, exported), num_versions=2)
    assert servable.version == 3 and answer(servable) == 3.0
    assert store.status("m") == available(3, 2)
    assert store.status("m", 2) == available(2)
    assert answer(store.get("m", 2)) == 2.0
    with pytest.raises(NotFound, match=r"^Servable not found for request: Specific\(m, 1\)$"):
        store.get("m", 1)
    with pytest.raises(NotFound, match="^Could not find version 1 of model m$"):
        store.status("m", 1)


def test_the_default_policy_serves_only_the_highest_version(tmp_path, exported):
    store = ModelStore()
    store.add_model("m", make_base(tmp_path, exported))
    assert store.status("m") == available(3)
    assert store.model_names() == ["m"]


def test_all_serves_every_version(tmp_path, exported):
    store = ModelStore()
    store.add_model("m", make_base(tmp_path, exported), version_policy="all")
    assert store.status("m") == available(3, 2, 1)
    assert [answer(store.get("m", v)) for v in (1, 2, 3)] == [1.0, 2.0, 3.0]


def test_specific_serves_the_listed_versions_that_exist(tmp_path, exported):
    store = ModelStore()
    servable = store.add_model("m", make_base(tmp_path, exported), version_policy="specific", versions=[1, 3, 7])
    assert store.status("m") == available(3, 1)
    assert servable.version == 3
    with pytest.raises(NotFound, match=r"Specific\(m, 2\)"):
        store.get("m", 2)


def test_select_versions_follows_tf_serving():
    def entry(**policy):
        return ModelEntry("m", "/models/m", **policy)

    assert select_versions(entry(), [4, 1, 9]) == [9]
    assert select_versions(entry(num_versions=2), [4, 1, 9]) == [4, 9]
    assert select_versions(entry(num_versions=5), [4, 1]) == [1, 4]
    assert select_versions(entry(version_policy="all"), [4, 1, 9]) == [1, 4, 9]
    assert select_versions(entry(version_policy="specific", versions=[1, 2]), [4, 1, 9]) == [1]


def test_labels_address_versions(tmp_path, exported):
    store = ModelStore()
    store.add_model("m", make_base(tmp_path, exported), version_policy="all", version_labels={"stable": 1, "canary": 3})
    assert store.get("m", label="stable").version == 1
    assert answer(store.get("m", label="canary")) == 3.0
    assert store.metadata("m", label="stable")["model_spec"] == {"name": "m", "signature_name": "", "version": "1"}
    with pytest.raises(InvalidArgument, match="^Unrecognized servable version label: beta$"):
        store.get("m", label="beta")


def test_a_label_for_a_version_not_served_is_refused(tmp_path, exported):
    store = ModelStore()
    with pytest.raises(
        ModelConfigError,
        match=r"^Request to assign label to version 1 of model m, which is not currently available for inference "
        r"\(label 'stable'; served versions: \[3\]\)",
    ):
        store.add_model("m", make_base(tmp_path, exported), version_labels={"stable": 1})
    with pytest.raises(InvalidArgument, match="Unrecognized servable version label: stable"):
        store.get("m", label="stable")


def test_refresh_loads_new_versions_and_unloads_what_the_policy_drops(tmp_path, exported):
    base = make_base(tmp_path, exported, versions=(1, 2))
    store = ModelStore()
    store.add_model("m", base, num_versions=2, version_labels={"stable": 1})
    old = store.get("m", label="stable")
    shutil.copytree(exported / "3", base / "3")
    store.refresh()
    # TF Serving keeps an unloaded version in the status, as END with an OK status.
    assert store.status("m") == {
        "model_version_status": [state(3, "AVAILABLE"), state(2, "AVAILABLE"), state(1, "END")]
    }
    # The label still names version 1, which is no longer served: TF Serving's error.
    with pytest.raises(NotFound, match=r"^Servable not found for request: Specific\(m, 1\)$"):
        store.get("m", label="stable")
    # A request that got version 1 before the unload keeps a working servable.
    assert answer(old) == 1.0
    shutil.rmtree(base / "3")
    store.refresh()
    assert store.status("m")["model_version_status"][0] == state(3, "END")
    assert store.get("m").version == 2


def test_a_corrupt_version_is_reported_skipped_and_retried_only_once_it_changes(tmp_path, exported, caplog):
    caplog.set_level(logging.INFO, logger="tfdl.serving")
    base = make_base(tmp_path, exported, versions=(1,))
    store = ModelStore()
    store.add_model("m", base)
    (base / "4").mkdir()
    (base / "4" / "saved_model.pb").write_bytes(b"not a SavedModel")
    for _ in range(3):
        store.refresh()
    status = store.status("m")["model_version_status"]
    assert [(s["version"], s["state"], s["status"]["error_code"]) for s in status] == [
        ("4", "END", "UNKNOWN"),
        ("1", "AVAILABLE", "OK"),
    ]
    assert "Cannot parse file" in status[0]["status"]["error_message"]
    assert store.get("m").version == 1
    failed = [r for r in caplog.records if "version 4" in r.getMessage() and "failed to load" in r.getMessage()]
    assert len(failed) == 1 and failed[0].levelno == logging.ERROR
    # A complete export written over it changes the folder: the next refresh tries again and serves it.
    shutil.rmtree(base / "4")
    shutil.copytree(exported / "2", base / "4")
    store.refresh()
    assert store.get("m").version == 4 and answer(store.get("m")) == 2.0
    assert store.status("m") == {"model_version_status": [state(4, "AVAILABLE"), state(1, "END")]}


def test_a_version_that_fails_its_warm_up_is_skipped(tmp_path, exported):
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    base = make_base(tmp_path, exported, versions=(1, 2))
    # Version 2's warm-up record sends 3 features to a model that takes 2.
    record = prediction_log_pb2.PredictionLog()
    record.predict_log.request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.zeros((1, 3), "float32")))
    with tf.io.TFRecordWriter(str(base / "2" / "assets.extra" / "tf_serving_warmup_requests")) as writer:
        writer.write(record.SerializeToString())
    store = ModelStore()
    store.reload_config([ModelEntry("m", str(base), version_policy="all")])
    status = store.status("m")["model_version_status"]
    assert [(s["version"], s["state"]) for s in status] == [("2", "END"), ("1", "AVAILABLE")]
    assert "record 0: the warm-up request failed" in status[0]["status"]["error_message"]


def test_a_half_written_version_waits_until_complete(tmp_path, exported, caplog):
    caplog.set_level(logging.INFO, logger="tfdl.serving")
    base = make_base(tmp_path, exported, versions=(1,))
    store = ModelStore()
    store.add_model("m", base)
    shutil.copytree(exported / "2", base / "2", ignore=shutil.ignore_patterns("saved_model.pb"))
    store.refresh()
    store.refresh()
    assert store.status("m") == available(1)
    waiting = [r for r in caplog.records if "has no saved_model.pb yet" in r.getMessage()]
    assert len(waiting) == 1
    shutil.copy2(exported / "2" / "saved_model.pb", base / "2" / "saved_model.pb")
    store.refresh()
    assert store.status("m") == {"model_version_status": [state(2, "AVAILABLE"), state(1, "END")]}


def test_versions_come_only_from_numbered_folders_under_the_base_path(tmp_path, exported):
    base = make_base(tmp_path / "models", exported, versions=(1,))
    # Complete SavedModels the store must never reach: outside the base path,
    # and inside it under names that are not version numbers.
    shutil.copytree(exported / "3", tmp_path / "x" / "1")
    for name in (".5.staging", "6a", "0", "-7"):
        shutil.copytree(exported / "3", base / name)
    store = ModelStore()
    store.add_model("m", base, version_policy="all")
    assert store.status("m") == available(1)
    for name in ("../x", "..", "m/../../x", "m/1"):
        with pytest.raises(NotFound, match=r"Servable not found for request: Latest\("):
            store.get(name)
        with pytest.raises(NotFound, match="Could not find any versions of model"):
            store.status(name)
    with pytest.raises(InvalidArgument, match=r"Unrecognized servable version label: \.\./x"):
        store.get("m", label="../x")
    with pytest.raises(ModelConfigError, match=r"field 'name': '\.\./x' is not a model name"):
        store.add_model("../x", tmp_path / "x")
    assert store.model_names() == ["m"]


def test_reload_config_adds_and_removes_models(tmp_path, exported):
    store = ModelStore()
    store.add_model("m", make_base(tmp_path, exported, name="m"))
    n = ModelEntry("n", str(make_base(tmp_path, exported, versions=(1, 2), name="n")), version_policy="all")
    store.reload_config([ModelEntry("m", str(tmp_path / "m")), n])
    assert store.model_names() == ["m", "n"]
    assert store.status("n") == available(2, 1)
    store.reload_config([n])
    assert store.model_names() == ["n"]
    with pytest.raises(NotFound, match=r"^Servable not found for request: Latest\(m\)$"):
        store.get("m")
    assert store.status("m") == {"model_version_status": [state(3, "END")]}


def test_a_new_model_with_nothing_to_serve_raises_and_the_others_keep_serving(tmp_path, exported):
    store = ModelStore()
    store.add_model("m", make_base(tmp_path, exported, versions=(1,)))
    (tmp_path / "bad" / "1").mkdir(parents=True)
    (tmp_path / "bad" / "1" / "saved_model.pb").write_bytes(b"garbage")
    entries = [ModelEntry("m", str(tmp_path / "m")), ModelEntry("bad", str(tmp_path / "bad"))]
    with pytest.raises(ModelLoadError, match=r"model 'bad' \(.*bad\): nothing to serve: version 1: Cannot parse file"):
        store.reload_config(entries)
    assert store.get("m").version == 1
    assert store.status("bad")["model_version_status"][0]["state"] == "END"
    with pytest.raises(FileNotFoundError, match="no SavedModel version under .*empty"):
        store.add_model("empty", tmp_path / "empty")


def test_add_model_refuses_a_bad_policy(tmp_path, exported):
    base = make_base(tmp_path, exported)
    with pytest.raises(ModelConfigError, match="num_versions goes with the `latest` policy, not 'all'"):
        ModelStore().add_model("m", base, version_policy="all", num_versions=2)
    with pytest.raises(ModelConfigError, match="unknown version policy 'newest'"):
        ModelStore().add_model("m", base, version_policy="newest")


def test_yaml_and_models_config_give_the_same_entries(tmp_path, exported):
    make_base(tmp_path / "models", exported, versions=(1, 2), name="m")
    make_base(tmp_path / "models", exported, versions=(3,), name="n")
    (tmp_path / "models.yaml").write_text(
        "models:\n"
        "  - name: m\n"
        "    base_path: models/m\n"
        "    version_policy: all\n"
        "    version_labels: {stable: 1, canary: 2}\n"
        "  - name: n\n"
        f"    base_path: {tmp_path / 'models' / 'n'}\n"
    )
    expected = [
        ModelEntry("m", str(tmp_path / "models" / "m"), "all", version_labels={"stable": 1, "canary": 2}),
        ModelEntry("n", str(tmp_path / "models" / "n")),
    ]
    entries = read_model_config(tmp_path / "models.yaml")
    assert entries == expected and [e.version_labels for e in entries] == [{"stable": 1, "canary": 2}, {}]
    write_model_server_config(tmp_path / "models.config", expected)
    assert read_model_config(tmp_path / "models.config") == expected
    store = ModelStore()
    store.reload_config(entries)
    assert store.status("m") == available(2, 1) and store.status("n") == available(3)
    assert answer(store.get("m", label="canary")) == 2.0


def test_a_relative_base_path_in_models_config_is_relative_to_the_file(tmp_path):
    (tmp_path / "conf").mkdir()
    write_model_server_config(tmp_path / "conf" / "models.config", [ModelEntry("m", "m", "specific", versions=[2])])
    [entry] = read_model_config(tmp_path / "conf" / "models.config")
    assert entry == ModelEntry("m", str(tmp_path / "conf" / "m"), "specific", versions=[2])


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("{name: m, base_path: /m, num_versions: two}",
         r"models\[0\] \('m'\), field 'num_versions': expected an integer, got 'two'"),
        ("{name: m, base_path: /m, versoins: [1]}", r"models\[0\]: unknown fields \['versoins'\]; the fields are"),
        ("{name: my model, base_path: /m}", r"models\[0\], field 'name': 'my model' is not a model name"),
        ("{name: m}", r"models\[0\], field 'base_path': required, a non-empty string; got None"),
        ("{name: m, base_path: /m, version_policy: newest}",
         r"field 'version_policy': 'newest' is not a policy; use one of latest, all, specific"),
        ("{name: m, base_path: gs://bucket/m}",
         r"field 'base_path': 'gs://bucket/m' is a URI; tfdl serves from local folders"),
        ("{name: m, base_path: /m, versions: [1]}",
         r"models\[0\] \('m'\): model 'm': versions go with the `specific` policy"),
        ("{name: m, base_path: /m, version_labels: {stable: one}}",
         r"field 'version_labels': expected a mapping of label to version number"),
        ("{name: m, base_path: /m, num_versions: true}", r"field 'num_versions': expected an integer, got True"),
    ],
)
def test_a_bad_yaml_field_is_named(tmp_path, model, message):
    (tmp_path / "models.yaml").write_text(f"models:\n  - {model}\n")
    with pytest.raises(ModelConfigError, match=message):
        read_model_config(tmp_path / "models.yaml")


def test_a_bad_config_file_is_named(tmp_path):
    with pytest.raises(ModelConfigError, match="no model config at .*missing.yaml"):
        read_model_config(tmp_path / "missing.yaml")
    (tmp_path / "a.yaml").write_text("model: []\n")
    with pytest.raises(ModelConfigError, match=r"a.yaml: expected one top-level key 'models' .*found \['model'\]"):
        read_model_config(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text("models:\n  - {name: m, base_path: /a}\n  - {name: m, base_path: /b}\n")
    with pytest.raises(ModelConfigError, match=r"b.yaml: models \['m'\] are listed more than once"):
        read_model_config(tmp_path / "b.yaml")
    (tmp_path / "models.config").write_text("model_config_list { config { nme: 'm' } }")
    with pytest.raises(ModelConfigError, match="models.config: not a TF Serving ModelServerConfig text proto"):
        read_model_config(tmp_path / "models.config")
    (tmp_path / "c.config").write_text(
        "model_config_list { config { name: 'a b' base_path: '/m' model_platform: 'tensorflow' } }"
    )
    with pytest.raises(ModelConfigError, match=r"c.config, models\[0\], field 'name': 'a b' is not a model name"):
        read_model_config(tmp_path / "c.config")
