"""Atlas entries 21-25: convolutional networks, their layers, pooling, padding and dilated convolutions."""

from __future__ import annotations

from tfdl.atlas.entry import atlas_entry
from tfdl.atlas.lesson import Lesson
from tfdl.atlas.topics.fitting import fit_steps


def _shift(images, dy: int, dx: int):
    """`images` [N, H, W, ...] moved `dy` pixels down and `dx` right; what enters is zero, what leaves is lost."""
    import numpy as np

    height, width = images.shape[1:3]
    out = np.zeros_like(images)
    out[:, max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = \
        images[:, max(-dy, 0):height + min(-dy, 0), max(-dx, 0):width + min(-dx, 0)]
    return out


def _digit_images():
    """scikit-learn's 8x8 digits as float32 images [N, 8, 8, 1] scaled to [0, 1], and their labels."""
    from tfdl.pipelines import load_sklearn_dataset

    digits = load_sklearn_dataset("digits")
    return (digits.features / 16.0).reshape(-1, 8, 8, 1).astype("float32"), digits.labels


@atlas_entry(
    21,
    formula=r"y_{i,j,c'} = b_{c'} + \sum_{u=0}^{k-1}\sum_{v=0}^{k-1}\sum_{c} W_{u,v,c,c'}\; x_{i+u,\,j+v,\,c},"
    r"\qquad \operatorname{conv}(\operatorname{shift}(x)) = \operatorname{shift}(\operatorname{conv}(x))",
    see=("tfdl.models.build_cnn", "tfdl.models.CNNConfig", "tfdl.pipelines.load_sklearn_dataset"),
    configs=("digits_cnn",),
)
def convolutional_neural_network(lesson: Lesson) -> None:
    """A **convolutional neural network** (CNN) is a network for grid-shaped data (images,
    spectrograms, sequences) whose main layers are **convolutions**: instead of connecting
    every output to every input, a convolutional layer slides a small kernel (say
    $3 \\times 3$ over all input channels) across the input and computes the same weighted
    sum at every position (the formula). Two assumptions are built in: **locality** (a
    feature depends on a small neighbourhood) and **weight sharing** (the same feature
    detector is useful everywhere). A layer therefore owns $k^2 C_\\text{in} C_\\text{out}
    + C_\\text{out}$ parameters whatever the image size, and it is **translation
    equivariant**: shifting the input shifts its feature maps by the same amount.

    A CNN stacks convolutions with non-linearities and pooling, so later layers see larger
    regions and detect larger patterns (edges, then strokes, then digits); a final pooling
    and dense head turn the feature maps into class scores. A fully connected network
    (MLP) on the flattened pixels has none of this structure: it must learn each pattern
    separately at each position.

    The example trains tfdl's CNN and an MLP with about the same number of parameters on
    8×8 digits and tests both on the test digits shifted by one pixel. It also checks the
    equivariance exactly: the first convolution of a shifted digit equals its feature maps
    of the original digit, shifted.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.models import build_model

    images, labels = _digit_images()
    flat = images.reshape(-1, 64)
    train, test = slice(0, 1200), slice(1200, None)
    cnn = build_model("cnn", {"input_shape": (64,), "image_shape": (8, 8, 1), "num_classes": 10,
                              "filters": (16, 32), "convs_per_block": 1, "batch_norm": False, "dense_units": 0,
                              "dropout": 0.0})
    mlp = build_model("mlp", {"input_shape": (64,), "num_classes": 10, "hidden_units": (64,)})
    shifts = {"original": (0, 0), "right": (0, 1), "left": (0, -1), "down": (1, 0), "up": (-1, 0)}
    accuracy = {}
    for name, model in (("CNN", cnn), ("MLP", mlp)):
        fit_steps(model, flat[train], labels[train], steps=lesson.budget(200, 1500), learning_rate=0.01, seed=lesson.seed)
        for where, (dy, dx) in shifts.items():
            moved = _shift(images[test], dy, dx).reshape(-1, 64)
            accuracy[name, where] = float(np.mean(model(moved).numpy().argmax(-1) == labels[test]))
    shifted = {name: float(np.mean([accuracy[name, w] for w in shifts if w != "original"])) for name in ("CNN", "MLP")}
    for name, model in (("CNN", cnn), ("MLP", mlp)):
        lesson.number(f"{name}: parameters", model.count_params())
        lesson.number(f"{name}: test accuracy", accuracy[name, "original"])
        lesson.number(f"{name}: test accuracy, digits shifted by 1 pixel (mean of 4 directions)", shifted[name])
    lesson.table("Test accuracy on digits as they are and shifted by one pixel", ("shift",) + ("CNN", "MLP"),
                 [(where, accuracy["CNN", where], accuracy["MLP", where]) for where in shifts])

    # Equivariance: the first convolution's maps of a digit moved right are its maps of the digit, moved right.
    conv = cnn.get_layer("block1_conv1")
    maps = conv(images[test]).numpy()
    maps_of_shifted = conv(_shift(images[test], 0, 1)).numpy()
    # The edge columns see what entered and what left the image, so compare away from them.
    equivariance_error = float(np.abs(maps_of_shifted[:, :, 1:-1] - maps[:, :, :-2]).max())
    lesson.number("largest |conv(shift(x)) - shift(conv(x))|", equivariance_error)
    dense_weights = 64 * (8 * 8 * 16) + 8 * 8 * 16
    lesson.number("parameters of the first conv layer (3x3, 1 -> 16 channels)", conv.count_params())
    lesson.number("parameters of a dense layer with the same 8x8x16 output", dense_weights)

    fig, axes = plt.subplots(1, 5, figsize=(11, 2.8), layout="constrained",
                             gridspec_kw={"width_ratios": [1, 1, 1, 1, 2.2]})
    channel = int(np.argmax(maps[0].std(axis=(0, 1))))
    for ax, picture, title in ((axes[0], images[test][0, ..., 0], "a test digit"),
                               (axes[1], maps[0, ..., channel], f"conv feature map {channel}"),
                               (axes[2], _shift(images[test], 0, 1)[0, ..., 0], "digit shifted right"),
                               (axes[3], maps_of_shifted[0, ..., channel], "its feature map")):
        ax.imshow(picture, cmap="gray_r")
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    where = np.arange(len(shifts))
    for offset, name in ((-0.2, "CNN"), (0.2, "MLP")):
        axes[4].bar(where + offset, [accuracy[name, w] for w in shifts], 0.4,
                    label=f"{name} ({(cnn if name == 'CNN' else mlp).count_params()} parameters)")
    axes[4].set_xticks(where, list(shifts), fontsize=8)
    axes[4].set_ylabel("test accuracy")
    axes[4].set_xlabel("shift of the test digits by 1 pixel")
    axes[4].set_ylim(0, 1.2)
    axes[4].legend(fontsize=7, loc="upper center", ncol=2)
    lesson.figure(fig, "cnn_vs_mlp", "A digit and one feature map of the CNN's first convolution, before and after "
                  "a one-pixel shift (the map moves with the digit); test accuracy of the CNN and an MLP of the "
                  "same size on shifted digits.")
    ratio = abs(cnn.count_params() - mlp.count_params()) / mlp.count_params()
    lesson.check("the CNN and the MLP have about the same number of parameters (within 10%) and both learn the "
                 "digits (test accuracy >= 0.8)",
                 ratio < 0.1 and min(accuracy["CNN", "original"], accuracy["MLP", "original"]) >= 0.8,
                 f"{cnn.count_params()} vs {mlp.count_params()}; accuracy {accuracy['CNN', 'original']:.3f} vs "
                 f"{accuracy['MLP', 'original']:.3f}")
    lesson.check("a convolution is translation equivariant: conv(shift(x)) equals shift(conv(x)) away from the edges "
                 "(max error < 1e-5)",
                 equivariance_error < 1e-5, f"{equivariance_error:.1e}")
    lesson.check("on digits shifted by one pixel the CNN is at least 0.1 more accurate than the MLP",
                 shifted["CNN"] - shifted["MLP"] >= 0.1, f"CNN {shifted['CNN']:.3f}, MLP {shifted['MLP']:.3f}")


@atlas_entry(
    22,
    formula=r"\text{conv } k{\times}k: (H, W, C) \to (H', W', F),\ \ k^2 C F + F \text{ parameters};\quad "
    r"\text{batch norm}: 4C\ (2C \text{ trained});\quad "
    r"\text{pool } 2{\times}2: (H, W, C) \to (\lfloor H/2 \rfloor, \lfloor W/2 \rfloor, C),\ 0;\quad "
    r"\text{dense}: (n + 1)\, m",
    see=("tfdl.models.build_cnn", "tfdl.models.CNNConfig"),
    configs=("digits_cnn",),
)
def cnn_layers(lesson: Lesson) -> None:
    """A typical CNN is a stack of a few kinds of layers:

    - **Convolution** (`Conv2D`): $F$ learned $k \\times k \\times C$ filters slid over the
      input, one output channel (feature map) per filter; $k^2 C F$ weights plus $F$ biases,
      independent of the image size. Padding and stride set the output's height and width
      (question 24).
    - **Activation** (ReLU), applied element-wise; no parameters.
    - **Batch normalization** after a convolution: normalizes each channel over the batch,
      then scales and shifts it with two learned vectors; it also keeps the moving mean and
      variance for inference (4 numbers per channel, 2 trained). With it the convolution
      needs no bias.
    - **Pooling** (`MaxPooling2D`): summarizes each $2 \\times 2$ window by its maximum,
      halving height and width with no parameters (question 23). Between blocks the
      number of channels usually doubles as the resolution halves.
    - **Global average pooling** averages each feature map to one number, so the head sees
      one vector of $C$ features whatever the image size (older networks flattened the
      maps instead, at many more parameters).
    - **Dense** layers and **dropout** form the classifier head; the last dense layer has
      one unit per class with a softmax.

    The example builds tfdl's CNN for 8×8 digits (two blocks of two convolutions, 16 then
    32 filters), derives every layer's output shape and parameter count from the formulas
    and compares them with what Keras built, then trains it briefly and shows what each
    stage makes of one digit.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.models import build_model

    images, labels = _digit_images()
    config = {"input_shape": (64,), "image_shape": (8, 8, 1), "num_classes": 10, "filters": (16, 32),
              "kernel_size": 3, "convs_per_block": 2, "batch_norm": True, "dense_units": 32, "dropout": 0.2}
    model = build_model("cnn", config)

    shape, rows, all_match = (64,), [], True
    for layer in model.layers[1:]:
        kind, k = type(layer).__name__, config["kernel_size"]
        if kind == "Reshape":
            shape, count = config["image_shape"], 0
        elif kind == "Conv2D":  # 'same' padding, stride 1: the size stays; no bias before batch norm
            shape, count = (*shape[:2], layer.filters), k * k * shape[2] * layer.filters
        elif kind == "BatchNormalization":
            count = 4 * shape[-1]
        elif kind == "MaxPooling2D":
            shape, count = (shape[0] // 2, shape[1] // 2, shape[2]), 0
        elif kind == "GlobalAveragePooling2D":
            shape, count = (shape[2],), 0
        elif kind == "Dense":
            shape, count = (layer.units,), (shape[0] + 1) * layer.units
        else:  # ReLU, Dropout: element-wise, no parameters
            count = 0
        match = tuple(layer.output.shape[1:]) == tuple(shape) and layer.count_params() == count
        all_match &= match
        rows.append((layer.name, kind, str(tuple(shape)), count, str(tuple(layer.output.shape[1:])),
                     layer.count_params()))
    lesson.table("Each layer: output shape and parameters by the formulas, and as Keras built them",
                 ("layer", "type", "shape by formula", "parameters by formula", "Keras shape", "Keras parameters"),
                 rows)
    total = sum(row[3] for row in rows)
    lesson.number("parameters by the formulas", total)
    lesson.number("parameters, model.count_params()", model.count_params())

    train, test = slice(0, 1400), slice(1400, None)
    flat = images.reshape(-1, 64)
    fit_steps(model, flat[train], labels[train], steps=lesson.budget(150, 1000), learning_rate=0.01, seed=lesson.seed)
    accuracy = lesson.number("test accuracy", float(np.mean(model(flat[test]).numpy().argmax(-1) == labels[test])))

    stages = ("block1_conv2_relu", "block1_pool", "block2_conv2_relu", "pool", "probabilities")
    probe = keras.Model(model.input, [model.get_layer(name).output for name in stages])
    outputs = [value.numpy()[0] for value in probe(flat[test][:1])]

    def mosaic(maps):  # the first 8 feature maps of [H, W, C] in 2 rows of 4, a blank line between them
        h, w, _ = maps.shape
        tiles = np.full((2 * h + 1, 4 * w + 3), np.nan)
        for i in range(8):
            r, c = divmod(i, 4)
            tiles[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = maps[..., i]
        return tiles

    fig, axes = plt.subplots(1, 6, figsize=(12, 2.6), layout="constrained",
                             gridspec_kw={"width_ratios": [1, 2, 2, 2, 2, 1.6]})
    axes[0].imshow(images[test][0, ..., 0], cmap="gray_r")
    axes[0].set_title(f"input 8×8×1\n(label {labels[test][0]})", fontsize=8)
    for ax, maps, title in zip(axes[1:4], outputs[:3], ("block 1: 2 convs + ReLU", "max pooling 2×2",
                                                        "block 2: 2 convs + ReLU")):
        ax.imshow(mosaic(maps), cmap="viridis")
        ax.set_title(f"{title}\n{'×'.join(map(str, maps.shape))} (8 maps shown)", fontsize=8)
    for ax in axes[:4]:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[4].bar(np.arange(len(outputs[3])), outputs[3])
    axes[4].set_title(f"global average pooling\n{len(outputs[3])} features", fontsize=8)
    axes[4].set_xlabel("channel", fontsize=8)
    axes[5].bar(np.arange(10), outputs[4])
    axes[5].set_title("dense + softmax\n10 probabilities", fontsize=8)
    axes[5].set_xlabel("class", fontsize=8)
    axes[5].set_xticks(range(10))
    axes[5].tick_params(labelsize=7)
    lesson.figure(fig, "cnn_stages", "One test digit through the trained CNN: feature maps after each block and "
                  "after pooling, the pooled feature vector and the class probabilities.")
    lesson.check("every layer's output shape and parameter count equals its formula, and they sum to "
                 "model.count_params()", all_match and total == model.count_params(),
                 f"{total} by the formulas, {model.count_params()} by Keras")
    lesson.check("the stack learns the digits after brief training (test accuracy >= 0.8)", accuracy >= 0.8,
                 f"{accuracy:.3f}")


@atlas_entry(
    23,
    formula=r"\operatorname{maxpool}(x)_{i,j,c} = \max_{0 \le u, v < k} x_{s i + u,\ s j + v,\ c},\qquad "
    r"n_\text{out} = \left\lfloor \frac{n - k}{s} \right\rfloor + 1,\qquad "
    r"\operatorname{GAP}(x)_c = \frac{1}{HW}\sum_{i,j} x_{i,j,c}",
    see=("tfdl.models.build_cnn", "tfdl.models.CNNConfig"),
    configs=("digits_cnn",),
)
def pooling_layers(lesson: Lesson) -> None:
    """A **pooling layer** summarizes each small window of a feature map by one number —
    its maximum (**max pooling**) or its mean (**average pooling**) — separately for each
    channel, and has no parameters. With the usual $2 \\times 2$ window and stride 2 it
    halves height and width, which serves three purposes:

    - **Less computation and memory** in the layers that follow (a quarter of the
      positions), so the network can afford more channels as it gets deeper.
    - **A larger receptive field**: after pooling, a $3 \\times 3$ convolution covers twice
      the input distance, so later layers see whole objects.
    - **Some invariance to small shifts**: a feature that moves within its window gives
      the same maximum. This invariance is only partial for local pooling; **global**
      pooling (one number per channel over the whole map) is fully invariant to where a
      feature occurs, which is why classifiers end with it.

    The example puts each digit on a 12×12 canvas (so a one-pixel shift loses nothing),
    passes it through a random ReLU convolution, and measures how much the features change
    when the digit moves by one pixel, with no pooling, one and two stages of 2×2 max
    pooling, and global pooling — against how much they differ between two different
    digits. Without pooling, a one-pixel shift changes the features about as much as
    replacing the digit by another one. Each 2×2 pooling stage shrinks that change, though
    on images this small only a little more than it shrinks the differences between
    digits; global pooling removes it entirely while the digits stay distinguishable. The
    example also computes max and average pooling with numpy and checks Keras's output
    shapes against the formula.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np

    layers = keras.layers
    images, _ = _digit_images()
    canvas = np.pad(images[:lesson.budget(200, 1000)], ((0, 0), (2, 2), (2, 2), (0, 0)))  # 12x12, 2-pixel margin
    conv = layers.Conv2D(16, 3, padding="same", activation="relu")
    conv2 = layers.Conv2D(16, 3, padding="same", activation="relu")
    pool = layers.MaxPooling2D(2)
    features = {  # name: the features a digit gets, all from the same random filters
        "conv, no pooling": lambda x: conv(x),
        "conv, max pool 2×2": lambda x: pool(conv(x)),
        "2 convs, no pooling": lambda x: conv2(conv(x)),
        "2 × (conv, max pool 2×2)": lambda x: pool(conv2(pool(conv(x)))),
        "conv, global max pool": lambda x: layers.GlobalMaxPooling2D()(conv(x)),
        "conv, global average pool": lambda x: layers.GlobalAveragePooling2D()(conv(x)),
    }

    def relative_change(a, b):
        return float(np.mean(np.linalg.norm(a - b, axis=1) / np.linalg.norm(a, axis=1)))

    rows, shift_change, digit_change = [], {}, {}
    for name, feature in features.items():
        base = feature(canvas).numpy()
        moved = [feature(_shift(canvas, dy, dx)).numpy().reshape(len(canvas), -1)
                 for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0))]
        flat = base.reshape(len(canvas), -1)
        shift_change[name] = float(np.mean([relative_change(flat, m) for m in moved]))
        digit_change[name] = relative_change(flat[:-1], flat[1:])  # each digit against the next one in the data
        rows.append((name, str(base.shape[1:]), shift_change[name], digit_change[name],
                     shift_change[name] / digit_change[name]))
    lesson.table("How much the features change (relative L2 distance, mean over digits)",
                 ("features", "shape", "digit shifted 1 pixel", "a different digit", "ratio"), rows)
    for name in ("conv, no pooling", "2 × (conv, max pool 2×2)", "conv, global average pool"):
        lesson.number(f"{name}: change under a 1-pixel shift", shift_change[name])

    # Pooling by hand: split the map into 2x2 windows and reduce each.
    maps = conv(canvas).numpy()
    windows = maps.reshape(len(maps), 6, 2, 6, 2, 16)
    pool_error = max(float(np.abs(windows.max(axis=(2, 4)) - pool(maps).numpy()).max()),
                     float(np.abs(windows.mean(axis=(2, 4)) - layers.AveragePooling2D(2)(maps).numpy()).max()))
    lesson.number("largest |numpy pooling - Keras pooling|", pool_error)
    shape_rows, shapes_match = [], True
    for n, k, s in ((12, 2, 2), (12, 3, 3), (12, 3, 1), (7, 2, 2), (12, 3, 2)):
        by_formula = (n - k) // s + 1
        by_keras = layers.MaxPooling2D(k, strides=s)(np.zeros((1, n, n, 1), "float32")).shape[1]
        shapes_match &= by_formula == by_keras
        shape_rows.append((n, k, s, by_formula, by_keras))
    lesson.table("Max pooling output size, 'valid' (no padding)", ("input n", "window k", "stride s",
                 "floor((n - k) / s) + 1", "Keras"), shape_rows)

    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4), layout="constrained", gridspec_kw={"width_ratios": [1, 1, 4]})
    for ax, picture, title in ((axes[0], canvas[0, ..., 0], "a digit"),
                               (axes[1], _shift(canvas, 0, 1)[0, ..., 0], "shifted 1 pixel")):
        ax.imshow(picture, cmap="gray_r")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    where = np.arange(len(features))
    axes[2].bar(where - 0.2, [shift_change[n] for n in features], 0.4, label="the digit shifted by 1 pixel")
    axes[2].bar(where + 0.2, [digit_change[n] for n in features], 0.4, label="a different digit")
    axes[2].set_xticks(where, [n.replace(", ", ",\n") for n in features], fontsize=7)
    axes[2].set_ylabel("relative change of the features")
    axes[2].legend(fontsize=8)
    lesson.figure(fig, "pooling_invariance", "How much a digit's features change when it moves by one pixel, "
                  "against how much they differ between two digits, for each kind of pooling.")
    lesson.check("Keras max and average pooling equal the maximum and mean over 2×2 windows computed in numpy, and "
                 "their output sizes equal floor((n - k) / s) + 1", pool_error < 1e-6 and shapes_match,
                 f"max error {pool_error:.1e}")
    none, once, twice = (shift_change[n] for n in ("conv, no pooling", "conv, max pool 2×2",
                                                    "2 × (conv, max pool 2×2)"))
    lesson.check("each stage of 2×2 max pooling shrinks the change a one-pixel shift makes, by 10% or more",
                 once < 0.9 * none and twice < 0.9 * shift_change["2 convs, no pooling"],
                 f"no pooling {none:.3f}, one pool {once:.3f}; two convs {shift_change['2 convs, no pooling']:.3f}, "
                 f"with two pools {twice:.3f}")
    glob = max(shift_change["conv, global max pool"], shift_change["conv, global average pool"])
    lesson.check("global pooling is invariant to the shift (change < 1e-5) yet still tells digits apart "
                 "(change between digits > 0.05)",
                 glob < 1e-5 and min(digit_change["conv, global max pool"],
                                     digit_change["conv, global average pool"]) > 0.05,
                 f"shift {glob:.1e}; between digits {digit_change['conv, global average pool']:.3f} (average), "
                 f"{digit_change['conv, global max pool']:.3f} (max)")


@atlas_entry(
    24,
    formula=r"n_\text{out} = \left\lfloor \frac{n + 2p - k}{s} \right\rfloor + 1;\qquad "
    r"\text{valid: } p = 0;\qquad \text{same (stride 1, odd } k\text{): } p = \tfrac{k - 1}{2},\ "
    r"n_\text{out} = n;\qquad \text{same (Keras, stride } s\text{): } n_\text{out} = \lceil n / s \rceil",
    see=("tfdl.models.build_cnn", "tfdl.models.CNNConfig"),
)
def convolution_padding(lesson: Lesson) -> None:
    """A $k \\times k$ convolution can only be centred where the whole kernel fits, so without
    padding an $n \\times n$ input gives an $(n - k + 1) \\times (n - k + 1)$ output.
    **Padding** adds a border of $p$ pixels (zeros, usually) around the input before the
    kernel slides, giving the output size in the formula (with stride $s$, the kernel
    moves $s$ pixels at a time).

    - **Valid** padding ($p = 0$) uses only real pixels; every layer trims $k - 1$ pixels,
      so a deep stack shrinks the image to nothing, and pixels near the border enter
      fewer windows than central ones: a corner pixel takes part in one output of a
      $3 \\times 3$ convolution, a central one in nine.
    - **Same** padding, $p = (k - 1)/2$ for odd $k$, keeps the output the size of the input
      at stride 1, so layers can be stacked freely and border pixels count more. Keras's
      `padding="same"` generalizes this to any stride: the output has
      $\\lceil n/s \\rceil$ positions, and when the padding needed is odd the extra row
      and column go at the bottom and right.
    - Other schemes fill the border differently (reflection, replication, wrapping
      around); **causal** padding of 1-D sequences pads only the start, so an output never
      sees later inputs.

    The example checks the formula against Keras for many sizes, kernels, strides and
    paddings; shows that `padding="same"` is exactly zero padding by $(k-1)/2$ followed by a
    valid convolution; and counts, with the gradient of an all-ones convolution, how many
    outputs each input pixel reaches.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    layers = keras.layers
    rows, sizes_match = [], True
    for n, k, s, padding in ((8, 3, 1, "valid"), (8, 3, 1, "same"), (8, 5, 1, 1), (8, 5, 1, 2), (28, 5, 1, "valid"),
                             (28, 3, 2, "valid"), (28, 3, 2, 1), (28, 3, 2, "same"), (7, 3, 2, "same"),
                             (7, 4, 3, "valid"), (7, 4, 3, "same")):
        x = np.zeros((1, n, n, 1), "float32")
        if padding == "same":
            keras_size = layers.Conv2D(1, k, strides=s, padding="same")(x).shape[1]
            by_formula, shown = -(-n // s), "same"
        else:  # explicit padding p: zero-pad, then a valid convolution
            p = 0 if padding == "valid" else padding
            keras_size = layers.Conv2D(1, k, strides=s)(layers.ZeroPadding2D(p)(x)).shape[1]
            by_formula, shown = (n + 2 * p - k) // s + 1, f"p = {p}"
        sizes_match &= by_formula == keras_size
        rows.append((n, k, s, shown, by_formula, keras_size))
    lesson.table("Output size: by the formula and by Keras", ("input n", "kernel k", "stride s", "padding",
                 "by the formula", "Keras"), rows)

    # 'same' at stride 1 is zero padding by (k - 1) / 2 and a valid convolution with the same weights.
    images = np.random.default_rng(lesson.seed).uniform(size=(16, 8, 8, 3)).astype("float32")
    same = layers.Conv2D(4, 5, padding="same")
    valid = layers.Conv2D(4, 5, padding="valid")
    out_same = same(images).numpy()
    valid.build(images.shape)
    valid.set_weights(same.get_weights())
    out_padded = valid(layers.ZeroPadding2D(2)(images)).numpy()
    same_error = float(np.abs(out_same - out_padded).max())
    lesson.number("largest |same - (zero padding 2 + valid)|, 5x5 kernels", same_error)

    # How many outputs each input pixel reaches: the gradient of the sum of an all-ones 3x3 convolution.
    reach = {}
    for padding in ("valid", "same"):
        ones = layers.Conv2D(1, 3, padding=padding, kernel_initializer="ones", use_bias=False)
        pixels = tf.zeros((1, 8, 8, 1))
        with tf.GradientTape() as tape:
            tape.watch(pixels)
            total = tf.reduce_sum(ones(pixels))
        reach[padding] = tape.gradient(total, pixels).numpy()[0, ..., 0]
        lesson.number(f"{padding}: outputs a corner pixel reaches", float(reach[padding][0, 0]))
        lesson.number(f"{padding}: outputs a central pixel reaches", float(reach[padding][4, 4]))

    side = {"valid": [28], "same": [28]}  # feature map side as 3x3 convolutions are stacked, measured
    for padding, sides in side.items():
        x = np.zeros((1, 28, 28, 1), "float32")
        for _ in range(13):
            x = layers.Conv2D(1, 3, padding=padding)(x)
            sides.append(x.shape[1])
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), layout="constrained", gridspec_kw={"width_ratios": [1.4, 1, 1]})
    axes[0].plot(side["valid"], "o-", label="valid: 2 pixels lost per layer")
    axes[0].plot(side["same"], "s-", label="same: size kept")
    axes[0].set_title("stacking 3×3 convolutions on a 28×28 input", fontsize=9)
    axes[0].set_xlabel("3×3 convolutions stacked")
    axes[0].set_ylabel("feature map side (input 28)")
    axes[0].legend(fontsize=8)
    for ax, padding in zip(axes[1:], ("valid", "same")):
        shown = ax.imshow(reach[padding], cmap="viridis", vmin=0, vmax=9)
        for (i, j), count in np.ndenumerate(reach[padding]):
            ax.text(j, i, int(count), ha="center", va="center", fontsize=7, color="w" if count < 5 else "k")
        ax.set_title(f"'{padding}': outputs each input pixel reaches", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(shown, ax=axes[2], shrink=0.8)
    lesson.figure(fig, "padding", "Left: feature map size as 3×3 convolutions are stacked. Right: for an 8×8 input, "
                  "how many outputs of a 3×3 convolution each pixel enters, without and with padding.")
    lesson.check("Keras output sizes equal floor((n + 2p - k) / s) + 1 for explicit padding and ceil(n / s) for "
                 "'same', in every case tried", sizes_match, f"{len(rows)} cases")
    lesson.check("padding='same' equals zero padding by (k - 1) / 2 followed by a valid convolution "
                 "(max error < 1e-5)", same_error < 1e-5, f"{same_error:.1e}")
    lesson.check("after 13 stacked 3×3 convolutions a 28×28 map is 2×2 without padding and still 28×28 with 'same'",
                 side["valid"][-1] == 2 and side["same"][-1] == 28, f"{side['valid'][-1]} and {side['same'][-1]}")
    lesson.check("without padding a corner pixel enters 1 output of a 3×3 convolution and a central one 9; with "
                 "'same' padding the corner enters 4",
                 reach["valid"][0, 0] == 1 and reach["valid"][4, 4] == 9 and reach["same"][0, 0] == 4
                 and reach["same"][4, 4] == 9,
                 f"valid {reach['valid'][0, 0]:.0f} and {reach['valid'][4, 4]:.0f}, same {reach['same'][0, 0]:.0f} "
                 f"and {reach['same'][4, 4]:.0f}")


@atlas_entry(
    25,
    formula=r"y_{i,j} = \sum_{u,v=0}^{k-1} W_{u,v}\, x_{i + d u,\ j + d v},\qquad "
    r"k_\text{eff} = d\,(k - 1) + 1,\qquad \text{receptive field of a stack} = 1 + \sum_{l=1}^{L} (k - 1)\, d_l",
)
def dilated_convolutions(lesson: Lesson) -> None:
    """A **dilated** (or *atrous*) convolution spaces its kernel's taps $d$ pixels apart (the
    dilation rate): a $3 \\times 3$ kernel with $d = 2$ reads a $5 \\times 5$ area, with
    $d = 4$ a $9 \\times 9$ one, through the same nine weights. It is a convolution whose
    kernel has $d - 1$ zeros inserted between its entries, so it costs and owns exactly as
    much as the undilated one while seeing farther.

    Stacked with rates that double ($1, 2, 4, 8, \\dots$), the **receptive field** — the
    input region one output depends on — grows exponentially with depth instead of
    linearly, with no pooling or striding, so the output keeps the input's resolution.
    That is what dense prediction needs: **semantic segmentation** (DeepLab's atrous
    convolutions and spatial pyramid pooling) labels every pixel using wide context, and
    **audio and time series** models (WaveNet, temporal convolutional networks) use causal
    dilated 1-D convolutions to reach thousands of past samples in a few layers. The
    pitfall is **gridding**: repeating the same rate (2, 2, 2) reaches far but skips
    inputs in a regular pattern, so rates are chosen to cover every position.

    The example builds stacks of 3×3 convolutions with different rates, measures each
    receptive field as the set of input pixels with a nonzero gradient of the central
    output, compares it with the formula, and checks that a dilated convolution equals a
    larger convolution whose kernel holds zeros between the taps.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    layers = keras.layers
    side = 65

    def stack(rates):  # linear 3x3 convolutions with positive weights, so no gradient cancels by chance
        return keras.Sequential([keras.Input((side, side, 1))] + [
            layers.Conv2D(1, 3, padding="same", dilation_rate=rate,
                          kernel_initializer=keras.initializers.RandomUniform(0.5, 1.5, seed=lesson.seed + i))
            for i, rate in enumerate(rates)])

    def support(model):  # input pixels that the central output depends on
        pixels = tf.zeros((1, side, side, 1))
        with tf.GradientTape() as tape:
            tape.watch(pixels)
            centre = model(pixels)[0, side // 2, side // 2, 0]
        return tape.gradient(centre, pixels).numpy()[0, ..., 0] != 0

    rows, fields_match, maps = [], True, {}
    for rates in ((1,), (1, 1, 1), (1, 2, 4), (2, 2, 2), (1, 1, 1, 1, 1), (1, 2, 4, 8, 16)):
        model = stack(rates)
        used = support(model)
        where = np.argwhere(used)
        measured = int(where[:, 0].max() - where[:, 0].min() + 1)
        by_formula = 1 + sum(2 * rate for rate in rates)
        covered = float(used.sum() / measured**2)
        fields_match &= measured == by_formula
        maps[rates] = used
        rows.append((str(rates), model.count_params(), by_formula, measured, covered))
    lesson.table("Stacks of 3×3 convolutions: receptive field by the formula and measured",
                 ("dilation rates", "parameters", "receptive field by formula", "measured", "share of it used"), rows)
    params = {row[0]: row[1] for row in rows}
    coverage = {row[0]: row[4] for row in rows}
    lesson.number("receptive field, 5 layers, rate 1", rows[4][3])
    lesson.number("receptive field, 5 layers, rates 1-2-4-8-16", rows[5][3])

    # A dilated convolution is the convolution with zeros between its kernel's taps.
    images = np.random.default_rng(lesson.seed).normal(size=(8, 16, 16, 3)).astype("float32")
    dilated = layers.Conv2D(4, 3, dilation_rate=2, padding="same")
    out_dilated = dilated(images).numpy()
    kernel, bias = dilated.get_weights()
    spread = np.zeros((5, 5, 3, 4), "float32")
    spread[::2, ::2] = kernel
    wide = layers.Conv2D(4, 5, padding="same")
    wide.build(images.shape)
    wide.set_weights([spread, bias])
    spread_error = float(np.abs(out_dilated - wide(images).numpy()).max())
    lesson.number("largest |dilated 3x3 - 5x5 with zeros between taps|", spread_error)

    depth = np.arange(1, 7)
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.2), layout="constrained",
                             gridspec_kw={"width_ratios": [1.4, 1, 1, 1]})
    axes[0].plot(depth, [1 + 2 * d for d in depth], "o-", label="rate 1: 1 + 2L")
    axes[0].plot(depth, [2 ** (d + 1) - 1 for d in depth], "s-", label="rates 1, 2, 4, …: $2^{L+1} - 1$")
    axes[0].plot([3, 5], [rows[1][3], rows[4][3]], "k+", ms=10, label="measured")
    axes[0].plot([3, 5], [rows[2][3], rows[5][3]], "k+", ms=10)
    axes[0].set_xlabel("3×3 layers stacked (L)")
    axes[0].set_ylabel("receptive field (pixels)")
    axes[0].set_yscale("log", base=2)
    axes[0].legend(fontsize=7)
    crop = slice(side // 2 - 8, side // 2 + 9)
    for ax, rates in zip(axes[1:], ((1, 1, 1), (1, 2, 4), (2, 2, 2))):
        ax.imshow(maps[rates][crop, crop], cmap="Greys")
        ax.set_title(f"rates {rates}: {int(maps[rates].sum())} input pixels", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    lesson.figure(fig, "dilation", "Left: receptive field against depth, by the formula and measured. Right: the "
                  "input pixels (black, central 17×17) one output depends on for three 3-layer stacks; repeating "
                  "rate 2 leaves holes (gridding).")
    lesson.check("the measured receptive field (nonzero gradient of the central output) equals 1 + Σ (k − 1) d_l "
                 "for every stack", fields_match, ", ".join(f"{r[0]}: {r[3]}" for r in rows))
    lesson.check("dilation adds no parameters: rates (1, 2, 4) own as many as (1, 1, 1)",
                 params["(1, 2, 4)"] == params["(1, 1, 1)"], f"{params['(1, 2, 4)']} and {params['(1, 1, 1)']}")
    lesson.check("a 3×3 convolution with rate 2 equals a 5×5 convolution with zeros between the taps "
                 "(max error < 1e-5)", spread_error < 1e-5, f"{spread_error:.1e}")
    lesson.check("rates (1, 2, 4) use every pixel of their 15×15 field; (2, 2, 2) leaves most of its 13×13 "
                 "field unused (gridding)", coverage["(1, 2, 4)"] == 1.0 and coverage["(2, 2, 2)"] < 0.5,
                 f"{coverage['(1, 2, 4)']:.2f} and {coverage['(2, 2, 2)']:.2f}")
