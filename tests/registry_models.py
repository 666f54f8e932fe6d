"""Every registry model at its smallest, and the functional form in which it is served.

Shared by the manifest test (signatures of every model) and the fresh-process
round trips (every model saved here, loaded in a new process). A model added
to the registry without an entry here fails `test_every_registered_model_is_covered`.
"""

from __future__ import annotations

import keras
import numpy as np

from tfdl.export.functional_view import functional_view

GAN = {"input_shape": (64,), "latent_dim": 4, "generator_filters": (8, 4), "discriminator_filters": (4, 8),
       "discriminator_dropout": 0.0, "seed": 3}

TINY = {
    "autoencoder": {"input_shape": (6,), "hidden_units": (4,), "code_size": 2},
    "bert": {"vocabulary_size": 20, "max_length": 8, "embed_dim": 8, "num_heads": 2, "num_layers": 1,
             "intermediate_dim": 8, "dropout": 0.0},
    "cnn": {"input_shape": (8, 8, 1), "num_classes": 3, "filters": (4,), "dense_units": 8},
    "conditional_gan": {**GAN, "num_classes": 2},
    "dcgan": GAN,
    "fcn": {"input_shape": (16, 16, 3), "num_classes": 3, "filters": (4, 4, 8), "variant": "8s"},
    "glove": {"vocabulary_size": 12, "embedding_dim": 4},
    "gpt": {"vocabulary_size": 20, "max_length": 8, "embed_dim": 8, "num_heads": 2, "num_layers": 1,
            "intermediate_dim": 8, "dropout": 0.0},
    "mlp": {"input_shape": (5,), "num_classes": 3, "hidden_units": (8,)},
    "one_stage_detector": {"input_shape": (32, 32, 3), "num_classes": 2, "backbone": "plain",
                           "backbone_filters": (4, 4, 4, 4), "feature_strides": (8, 16), "head_width": 4,
                           "head_depth": 1, "anchor_scales": ((0.4,), (0.8,)), "aspect_ratios": (1.0,)},
    "perceptron": {"input_shape": (2,), "num_classes": 2},
    "resnet": {"input_shape": (8, 8, 1), "num_classes": 3, "stages": (1, 1), "base_filters": 4, "version": 2},
    "rnn": {"vocabulary_size": 30, "num_classes": 4, "cell": "gru", "bidirectional": True, "units": (8, 4)},
    "rnn_regressor": {"input_shape": (None, 2), "mask_value": 0.0, "cell": "lstm", "units": (8,), "outputs": 3},
    "seq2seq": {"source_vocabulary_size": 12, "target_vocabulary_size": 12, "embed_dim": 8, "units": 16,
                "max_output_length": 5, "end_token": 9},
    "transfer": {"input_shape": (32, 32, 3), "num_classes": 3, "backbone": "mobilenet_v2", "alpha": 0.35,
                 "weights": "none", "dense_units": 8},
    "transformer_classifier": {"vocabulary_size": 20, "max_length": 8, "num_classes": 3, "embed_dim": 8,
                               "num_heads": 2, "intermediate_dim": 8},
    "two_stage_detector": {"input_shape": (32, 32, 3), "num_classes": 2, "backbone_filters": (8, 8, 8, 8),
                           "head_width": 8, "fc_units": 8, "masks": True, "mask_size": 4, "max_detections": 3},
    "unet": {"input_shape": (16, 16, 3), "num_classes": 3, "filters": (4, 8)},
    "vae": {"input_shape": (6,), "latent_dim": 2, "hidden_units": (8,)},
    "wgan": GAN,
    "word2vec": {"vocabulary_size": 12, "embedding_dim": 4, "negatives": 2},
}


def _dict_view(model, inputs: dict, output_name: str):
    """A model that takes a dict batch (word2vec, GloVe), served with one named input per key."""
    return keras.Model(inputs, keras.layers.Identity(name=output_name)(model(inputs)), name=f"{model.name}_view")


def _token_input(name: str):
    return keras.Input((None,), dtype="int32", name=name)


def served_forms(name: str, model, primary_only: bool = False) -> dict:
    """What is exported for registry model `name`: served name -> a functional model with named inputs and outputs.

    `primary_only` keeps the first form (the registry model, or its view),
    leaving out the extra heads (BERT's MLM and classifier, the detector with
    NMS, the VAE's decoder) whose exports cost seconds each.
    """
    forms = _served_forms(name, model)
    return dict([next(iter(forms.items()))]) if primary_only else forms


def _served_forms(name: str, model) -> dict:
    from tfdl.models import (
        OneStageDetectorConfig,
        build_bert_classifier,
        build_bert_mlm,
        detection_inference_model,
        detector_anchors,
    )

    if name == "bert":
        return {"bert_encoder": model, "bert_mlm": build_bert_mlm(model),
                "bert_classifier": build_bert_classifier(model, num_classes=3)}
    if name == "seq2seq":
        return {"seq2seq": functional_view(model, [_token_input("source"), _token_input("decoder_input")], ["logits"])}
    if name == "vae":
        return {"vae": functional_view(model, [keras.Input(model.config.input_shape, name="inputs")]),
                "vae_decoder": functional_view(model.decoder, [keras.Input((model.config.latent_dim,), name="latent")],
                                               ["reconstruction"])}
    if name in ("dcgan", "wgan", "conditional_gan"):
        return {f"{name}_generator": model.generator}
    if name == "glove":
        rows, columns = keras.Input((), dtype="int32", name="rows"), keras.Input((), dtype="int32", name="columns")
        return {"glove": _dict_view(model, {"rows": rows, "columns": columns}, "score")}
    if name == "word2vec":
        inputs = {"inputs": keras.Input((3,), dtype="int32", name="inputs"),
                  "inputs_mask": keras.Input((3,), name="inputs_mask"),
                  "positive": keras.Input((), dtype="int32", name="positive"),
                  "negatives": keras.Input((2,), dtype="int32", name="negatives")}
        return {"word2vec": _dict_view(model, inputs, "logits")}
    if name == "two_stage_detector":
        from tfdl.models.two_stage_serving import two_stage_inference_model

        return {"two_stage_detector": two_stage_inference_model(model)}
    if name == "one_stage_detector":
        anchors = detector_anchors(OneStageDetectorConfig(**TINY[name]))
        return {name: model, f"{name}_nms": detection_inference_model(model, anchors, max_detections=4,
                                                                       score_threshold=0.0)}
    return {name: model}


def example_batch(model, rng: np.random.Generator, batch: int = 3) -> dict[str, np.ndarray]:
    """`batch` examples per input of a functional model: ids in [1, 9] (some padding), floats in [0, 1)."""
    feed = {}
    for spec in model.inputs:
        shape = (batch, *(6 if d is None else d for d in spec.shape[1:]))
        if "int" in spec.dtype:
            # Class labels (conditional GAN) take 0 and 1; token ids 1..9, 0 is padding.
            ids = (rng.integers(0, 2, size=shape) if spec.name == "labels" else rng.integers(1, 10, size=shape))
            ids = ids.astype(spec.dtype)
            if ids.ndim > 1 and ids.shape[1] > 4:
                ids[1, 4:] = 0
            feed[spec.name] = ids
        else:
            feed[spec.name] = rng.random(shape).astype(spec.dtype)
    return feed
