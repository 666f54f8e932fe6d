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
    build_model("transfer", {...})                pretrained backbone (keras.applications, SavedModel, TF Hub) + new head
    build_model("one_stage_detector", {...})      RetinaNet/SSD-style detector over anchors
    build_model("two_stage_detector", {...})      Faster R-CNN / Mask R-CNN style two-stage detector
    build_model("perceptron", {...})              a single linear unit (the XOR lesson)
    build_model("autoencoder", {...})             dense/conv/denoising autoencoder, anomaly detection
    build_model("rnn", {...})                     SimpleRNN/LSTM/GRU classifier, stacked, bidirectional, masked
    build_model("rnn_regressor", {...})           the same trunk with a linear head (forecasting)
    build_model("word2vec", {...})                skip-gram / CBOW with negative sampling
    build_model("glove", {...})                   GloVe on a co-occurrence matrix
    build_model("dcgan", {...})                   GAN / DCGAN with its own train_step
    build_model("conditional_gan", {...})         class-conditional GAN
    build_model("wgan", {...})                    WGAN, weight clipping or gradient penalty (n_critic steps)
"""

# Importing a family registers its builder under its name.
from tfdl.models import (  # noqa: F401
    autoencoder, bert, cnn, conditional_gan, fcn, gan, glove, gpt, mlp, one_stage_detector, perceptron, recurrent,
    resnet, seq2seq, transfer, transformer_classifier, two_stage_detector, unet, vae, wgan, word2vec,
)
from tfdl.models.autoencoder import AutoencoderConfig, anomaly_detector, build_autoencoder, encoder
from tfdl.models.bert import BERTConfig, build_bert_classifier, build_bert_encoder, build_bert_mlm
from tfdl.models.cnn import CNNConfig, build_cnn
from tfdl.models.detection_serving import DetectionPostprocessing, detection_inference_model, predict_detections
from tfdl.models.detection_targets import BACKGROUND, IGNORED, encode_targets
from tfdl.models.conditional_gan import ConditionalGAN, ConditionalGANConfig, build_conditional_gan
from tfdl.models.fcn import FCNConfig, build_fcn
from tfdl.models.gan import GAN, GANConfig, build_dcgan
from tfdl.models.mlp import MLPConfig, build_mlp
from tfdl.models.perceptron import PerceptronConfig, build_perceptron
from tfdl.models.recurrent import RNNConfig, RNNRegressorConfig, build_rnn, build_rnn_regressor
from tfdl.models.one_stage_detector import (
    OneStageDetectorConfig,
    build_one_stage_detector,
    detector_anchors,
    kmeans_anchor_sizes,
)
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
from tfdl.models.transfer import CaffePreprocessing, TransferConfig, build_transfer
from tfdl.models.transformer_classifier import TransformerClassifierConfig, build_transformer_classifier
from tfdl.models.two_stage_detector import TwoStageDetector, TwoStageDetectorConfig, build_two_stage_detector
from tfdl.models.two_stage_serving import PasteMasks, predict_two_stage_detections, two_stage_inference_model
from tfdl.models.unet import UNetConfig, build_unet
from tfdl.models.vae import VAE, VAEConfig, build_vae, plot_vae
from tfdl.models.wgan import WGAN, WGANConfig, build_wgan

__all__ = [
    "AutoencoderConfig",
    "BACKGROUND",
    "BERTConfig",
    "CNNConfig",
    "CaffePreprocessing",
    "ConditionalGAN",
    "ConditionalGANConfig",
    "DetectionPostprocessing",
    "FCNConfig",
    "GAN",
    "GANConfig",
    "GPTConfig",
    "IGNORED",
    "MLPConfig",
    "ModelEntry",
    "OneStageDetectorConfig",
    "PasteMasks",
    "PerceptronConfig",
    "RNNConfig",
    "RNNRegressorConfig",
    "ResNetConfig",
    "Sampler",
    "Seq2Seq",
    "Seq2SeqConfig",
    "TransferConfig",
    "TransformerClassifierConfig",
    "TwoStageDetector",
    "TwoStageDetectorConfig",
    "UNetConfig",
    "VAE",
    "VAEConfig",
    "WGAN",
    "WGANConfig",
    "anomaly_detector",
    "available_models",
    "beam_search",
    "build_autoencoder",
    "build_bert_classifier",
    "build_bert_encoder",
    "build_bert_mlm",
    "build_cnn",
    "build_conditional_gan",
    "build_dcgan",
    "build_fcn",
    "build_gpt",
    "build_mlp",
    "build_model",
    "build_one_stage_detector",
    "build_perceptron",
    "build_resnet",
    "build_rnn",
    "build_rnn_regressor",
    "build_seq2seq",
    "build_transfer",
    "build_transformer_classifier",
    "build_two_stage_detector",
    "build_unet",
    "build_vae",
    "build_wgan",
    "detection_inference_model",
    "detector_anchors",
    "encode_targets",
    "encoder",
    "generate",
    "greedy_decode",
    "kmeans_anchor_sizes",
    "model_config",
    "model_entry",
    "perplexity",
    "plot_vae",
    "predict_detections",
    "predict_two_stage_detections",
    "register_model",
    "two_stage_inference_model",
]
