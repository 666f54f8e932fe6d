"""tfdl.models: the model zoo, each family built by name from the registry.

    build_model("cnn", {...})                     digits-style image classifier
    build_model("mlp", {...})                     dense layers over tabular rows
    build_model("resnet", {...})                  residual network, v1/v2, basic/bottleneck
    build_model("unet", {...})                    U-Net segmentation
    build_model("fcn", {...})                     FCN-32s/16s/8s segmentation
    build_model("transformer_classifier", {...})  token ids -> class
    build_model("seq2seq", {...})                 LSTM encoder-decoder with attention
    build_model("vae", {...})                     variational autoencoder
    build_model("gpt", {...})                     decoder-only language model
    build_model("bert", {...})                    bidirectional encoder (+ MLM / classifier heads)
"""

# Importing a family registers its builder under its name.
from tfdl.models import bert, cnn, fcn, gpt, mlp, resnet, seq2seq, transformer_classifier, unet, vae  # noqa: F401
from tfdl.models.bert import BERTConfig, build_bert_classifier, build_bert_encoder, build_bert_mlm
from tfdl.models.cnn import CNNConfig, build_cnn
from tfdl.models.fcn import FCNConfig, build_fcn
from tfdl.models.mlp import MLPConfig, build_mlp
from tfdl.models.resnet import ResNetConfig, build_resnet
from tfdl.models.gpt import GPTConfig, Sampler, build_gpt, generate, perplexity
from tfdl.models.registry import (
    ModelEntry,
    available_models,
    build_model,
    model_config,
    model_entry,
    register_model,
)
from tfdl.models.seq2seq import Seq2Seq, Seq2SeqConfig, beam_search, build_seq2seq, greedy_decode
from tfdl.models.transformer_classifier import TransformerClassifierConfig, build_transformer_classifier
from tfdl.models.unet import UNetConfig, build_unet
from tfdl.models.vae import VAE, VAEConfig, build_vae, plot_vae

__all__ = [
    "BERTConfig",
    "CNNConfig",
    "FCNConfig",
    "GPTConfig",
    "MLPConfig",
    "ResNetConfig",
    "ModelEntry",
    "Sampler",
    "Seq2Seq",
    "Seq2SeqConfig",
    "TransformerClassifierConfig",
    "UNetConfig",
    "VAE",
    "VAEConfig",
    "available_models",
    "beam_search",
    "build_bert_classifier",
    "build_bert_encoder",
    "build_bert_mlm",
    "build_cnn",
    "build_fcn",
    "build_gpt",
    "build_mlp",
    "build_resnet",
    "build_model",
    "build_seq2seq",
    "build_transformer_classifier",
    "build_unet",
    "build_vae",
    "generate",
    "greedy_decode",
    "model_config",
    "model_entry",
    "perplexity",
    "plot_vae",
    "register_model",
]
