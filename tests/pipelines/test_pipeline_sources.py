"""`build_pipeline` and `tfdl run` on every in-memory source: CSV, image and text folders.

Each source goes from files the test writes to feeds whose statistics come
from the training split only, and to a served model that takes raw inputs.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfdl.config import parse_config
from tfdl.pipelines import DataConfig, DataError, build_pipeline

SHORT = {"epochs": 2, "early_stopping": None, "verbose": 0}


def write_csv(path, rows: int = 120, seed: int = 0, missing: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3)) * [1.0, 10.0, 100.0] + [0.0, 50.0, -20.0]
    labels = np.where(x[:, 0] > 0, "yes", "no")
    lines = ["a,b,c,answer"]
    for i, (row, label) in enumerate(zip(x, labels)):
        cells = [f"{v:.6f}" for v in row]
        if i < missing:
            cells[1] = ""
        lines.append(",".join(cells + [label]))
    path.write_text("\n".join(lines) + "\n")
    return x, labels


def write_images(root, per_class: int = 12, size: int = 16):
    rng = np.random.default_rng(0)
    for label, name in enumerate(("dark", "light")):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 100, (size, size, 3)) + 150 * label
            (folder / f"{i}.png").write_bytes(tf.io.encode_png(image.astype(np.uint8)).numpy())
    return root


def write_texts(root, per_class: int = 20):
    words = {"pos": ["great", "good", "fine", "lovely"], "neg": ["bad", "awful", "poor", "grim"]}
    rng = np.random.default_rng(0)
    for name, vocab in words.items():
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            text = " ".join(rng.choice(vocab + ["the", "film", "was"], size=int(rng.integers(3, 9))))
            (folder / f"{i}.txt").write_text(text)
    return root


def fed(dataset):
    xs, ys = zip(*dataset.as_numpy_iterator())
    return np.concatenate(xs), np.concatenate(ys)


def test_csv_pipeline_normalizes_per_feature_with_training_statistics(tmp_path):
    write_csv(tmp_path / "data.csv")
    config = DataConfig(source={"type": "csv", "path": str(tmp_path / "data.csv"), "label_column": "answer"},
                        normalization="per_feature", batch_size=16)
    pipeline = build_pipeline(config, seed=3)
    x_train, _ = pipeline.raw("train")
    x_test, y_test = fed(pipeline.test)
    raw_test, raw_labels = pipeline.raw("test")
    np.testing.assert_allclose(x_test, (raw_test - x_train.mean(0)) / x_train.std(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(y_test, raw_labels)
    assert pipeline.class_names == ("no", "yes")
    assert pipeline.input_shape == (3,) and pipeline.input_name == "features"
    assert sum(pipeline.sizes.values()) == 120


def test_csv_missing_values_without_a_policy_name_the_column(tmp_path):
    write_csv(tmp_path / "data.csv", missing=3)
    config = DataConfig(source={"type": "csv", "path": str(tmp_path / "data.csv"), "label_column": "answer"})
    with pytest.raises(DataError, match="'b'"):
        build_pipeline(config, seed=0)


def test_csv_imputation_is_fitted_on_training_rows_and_reported(tmp_path):
    x, _ = write_csv(tmp_path / "data.csv", missing=10)
    config = DataConfig(
        source={"type": "csv", "path": str(tmp_path / "data.csv"), "label_column": "answer"},
        missing={"policy": "impute", "strategy": "median", "indicator": True},
        normalization="none",
    )
    pipeline = build_pipeline(config, seed=0)
    train_b = pipeline.raw("train")[0][:, 1]
    expected = np.median(train_b[~np.isnan(train_b)])
    filled = np.asarray(pipeline.preprocessing(np.array([[0.0, np.nan, 0.0]], "float32")))
    np.testing.assert_allclose(filled, [[0.0, expected, 0.0, 1.0]], rtol=1e-5)
    assert pipeline.report.lines() and "10" in " ".join(pipeline.report.lines())


def test_csv_drop_policy_reports_dropped_rows(tmp_path):
    write_csv(tmp_path / "data.csv", missing=7)
    config = DataConfig(source={"type": "csv", "path": str(tmp_path / "data.csv"), "label_column": "answer"},
                        missing={"policy": "drop"})
    pipeline = build_pipeline(config, seed=0)
    assert sum(pipeline.sizes.values()) == 113
    assert "7" in " ".join(pipeline.report.lines())


def test_balanced_class_weights_come_from_the_training_split(tmp_path):
    write_csv(tmp_path / "data.csv")
    config = DataConfig(source={"type": "csv", "path": str(tmp_path / "data.csv"), "label_column": "answer"},
                        imbalance={"class_weight": "balanced"})
    pipeline = build_pipeline(config, seed=0)
    _, y = pipeline.raw("train")
    counts = np.bincount(y, minlength=2)
    assert pipeline.class_weight == pytest.approx({c: len(y) / (2 * counts[c]) for c in range(2)})


def test_oversampling_balances_the_training_feed_only(tmp_path):
    rng = np.random.default_rng(0)
    rows = ["x,y"] + [f"{rng.normal():.4f},{int(i % 10 == 0)}" for i in range(400)]
    (tmp_path / "skewed.csv").write_text("\n".join(rows) + "\n")
    config = DataConfig(source={"type": "csv", "path": str(tmp_path / "skewed.csv"), "label_column": "y"},
                        imbalance={"resample": "oversample", "target": "uniform"}, batch_size=64)
    pipeline = build_pipeline(config, seed=0)
    _, train_labels = fed(pipeline.train)
    assert len(train_labels) == pipeline.sizes["train"]
    assert 0.42 < train_labels.mean() < 0.58
    _, test_labels = fed(pipeline.test)
    assert test_labels.mean() == pytest.approx(0.1, abs=0.02)


def test_image_folder_pipeline_decodes_augments_training_only_and_normalizes(tmp_path):
    write_images(tmp_path / "images")
    config = DataConfig(
        source={"type": "image_directory", "path": str(tmp_path / "images"), "image_size": [8, 8]},
        augmentation={"flip": "horizontal", "contrast": 0.3},
        batch_size=4,
    )
    pipeline = build_pipeline(config, seed=0)
    assert pipeline.input_shape == (8, 8, 3) and pipeline.class_names == ("dark", "light")
    x_test, y_test = fed(pipeline.test)
    np.testing.assert_allclose(x_test, np.asarray(pipeline.preprocessing(pipeline.test_inputs)), atol=1e-5)
    np.testing.assert_array_equal(y_test, pipeline.test_labels)
    first, again = (next(iter(pipeline.train))[0].numpy() for _ in range(2))
    assert first.shape == (4, 8, 8, 3) and not np.allclose(first, again)


def test_unreadable_image_is_named_or_skipped_and_counted(tmp_path):
    root = write_images(tmp_path / "images")
    (root / "dark" / "broken.png").write_bytes(b"not an image at all")
    source = {"type": "image_directory", "path": str(root), "image_size": [8, 8]}
    with pytest.raises(DataError, match="broken.png"):
        build_pipeline(DataConfig(source=source), seed=0)
    pipeline = build_pipeline(DataConfig(source=source, on_bad_data="skip"), seed=0)
    assert sum(pipeline.sizes.values()) == 24
    assert "broken.png" in " ".join(pipeline.report.lines())


def test_text_folder_vocabulary_comes_from_training_texts_only(tmp_path):
    write_texts(tmp_path / "texts")
    config = DataConfig(source={"type": "text_directory", "path": str(tmp_path / "texts")},
                        text={"sequence_length": 8, "max_tokens": 100})
    pipeline = build_pipeline(config, seed=0)
    vocabulary = set(pipeline.preprocessing.get_vocabulary())
    train_words = {w for text in pipeline.raw("train")[0] for w in text.split()}
    assert vocabulary - {"", "[UNK]"} == train_words
    x, _ = fed(pipeline.train)
    assert x.shape[1] == 8 and x.dtype == np.int64
    assert pipeline.model_params == {"vocabulary_size": len(vocabulary), "max_length": 8}


def test_text_bucketing_pads_each_batch_to_its_own_longest_text(tmp_path):
    write_texts(tmp_path / "texts")
    config = DataConfig(source={"type": "text_directory", "path": str(tmp_path / "texts")},
                        text={"sequence_length": None, "bucket_boundaries": [5, 7]}, batch_size=4)
    pipeline = build_pipeline(config, seed=0)
    widths = set()
    for batch, _ in pipeline.train.as_numpy_iterator():
        lengths = (batch != 0).sum(axis=1)
        assert batch.shape[1] == lengths.max()  # padded to this batch's longest text only
        assert len(set(np.digitize(lengths, [5, 7]))) == 1  # one length bucket per batch
        widths.add(batch.shape[1])
    assert len(widths) > 1


def run_config(tmp_path, data: dict, model: dict):
    return parse_config({
        "name": "source_run", "seed": 0, "data": data, "model": model,
        "training": SHORT, "export": {"model_name": "m", "sample_size": 3},
    })


def served_predictions(result, inputs):
    signature = tf.saved_model.load(str(result.serving_dir / str(result.version))).signatures["serving_default"]
    return signature(**{next(iter(signature.structured_input_signature[1])): tf.constant(inputs)})["probabilities"].numpy()


def test_run_on_csv_serves_raw_rows_with_imputation_inside(tmp_path):
    from tfdl.run import run

    write_csv(tmp_path / "data.csv", rows=200, missing=20)
    config = run_config(
        tmp_path,
        {"source": {"type": "csv", "path": str(tmp_path / "data.csv"), "label_column": "answer"},
         "missing": {"policy": "impute"}, "normalization": "per_feature"},
        {"name": "mlp", "params": {"hidden_units": [16]}},
    )
    result = run(config, output_dir=tmp_path / "run", log=lambda _: None)
    probabilities = served_predictions(result, np.array([[1.0, np.nan, 3.0]], "float32"))
    assert probabilities.shape == (1, 2) and np.isfinite(probabilities).all()
    assert result.metrics["data"]["report"] and result.metrics["parity"]["passed"]
    assert (result.run_dir / "export" / "labels.txt").read_text() == "no\nyes\n"


def test_run_on_a_text_folder_serves_raw_strings(tmp_path):
    from tfdl.run import run

    write_texts(tmp_path / "texts")
    config = run_config(
        tmp_path,
        {"source": {"type": "text_directory", "path": str(tmp_path / "texts")}, "text": {"sequence_length": 8},
         "batch_size": 8},
        {"name": "transformer_classifier", "params": {"input_name": "text", "embed_dim": 8, "num_heads": 2,
                                                      "intermediate_dim": 16}},
    )
    result = run(config, output_dir=tmp_path / "run", log=lambda _: None)
    probabilities = served_predictions(result, np.array(["great lovely film", "awful grim"]))
    assert probabilities.shape == (2, 2)
    assert (result.run_dir / "export" / "vocabulary.txt").exists()
    assert "model.tflite" not in " ".join(result.metrics["export"]["files"].values())


def test_a_data_frame_goes_through_the_same_pipeline(tmp_path):
    import pandas as pd

    from tfdl.pipelines import from_dataframe

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60), "kind": ["x", "y", "z"] * 20})
    frame.loc[3, "a"] = None
    data = from_dataframe(frame, "kind")
    config = DataConfig(missing={"policy": "impute", "strategy": "mean"}, normalization="per_feature", batch_size=8)
    pipeline = build_pipeline(config, seed=0, data=data)
    x, y = fed(pipeline.train)
    assert x.shape == (pipeline.sizes["train"], 2) and np.isfinite(x).all()
    assert pipeline.class_names == ("x", "y", "z") and set(y) == {0, 1, 2}
    assert pipeline.report.lines()
