"""Atlas entries 1-7: what deep learning is, the parts of a network, perceptrons, activations, backpropagation."""

from __future__ import annotations

from tfdl.atlas.entry import atlas_entry
from tfdl.atlas.lesson import Lesson
from tfdl.atlas.topics.fitting import fit_steps


@atlas_entry(
    1,
    see=("tfdl.models.build_mlp", "tfdl.models.build_model"),
)
def deep_learning_vs_traditional_ml(lesson: Lesson) -> None:
    """**Deep learning** is machine learning with models built from many stacked layers of
    simple, differentiable units, trained end to end by gradient descent on the raw
    input. Each layer re-describes its input, so the network learns its own
    *representation* of the data — the features — together with the decision made
    from them.

    **Traditional machine learning** (linear and logistic regression, SVMs, decision
    trees, gradient boosting) puts that work on a person: someone designs features
    (polynomial terms, image descriptors, word counts) and a comparatively shallow
    model learns weights for them. It works well when the right features are known
    and data is small or tabular; deep learning wins where features are hard to
    design by hand (pixels, audio, text) and data and compute are plentiful, at the
    price of more data, more compute and less interpretable models.

    The example classifies two concentric rings. Logistic regression on the raw
    coordinates draws one straight line and fails; the same logistic regression on
    hand-made quadratic features succeeds, because a person knew that a radius
    separates the classes; an MLP given only the raw coordinates learns a ring-shaped
    boundary by itself — its hidden layers made the feature.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    from sklearn.datasets import make_circles

    from tfdl.models import build_model

    x, y = make_circles(n_samples=600, noise=0.08, factor=0.5, random_state=lesson.seed)
    x, y = x.astype("float32"), y.astype("int32")

    def quadratic(points):  # the hand-made features: what a person adds for a linear model
        a, b = points[:, 0], points[:, 1]
        return np.stack([a, b, a * a, b * b, a * b], axis=1)

    def mlp(inputs, hidden_units):  # with no hidden layer, tfdl's MLP is multinomial logistic regression
        return build_model("mlp", {"input_shape": (inputs,), "num_classes": 2, "hidden_units": hidden_units})

    models = {  # name: (model, the features it is given)
        "logistic regression, raw x": (mlp(2, ()), lambda points: points),
        "logistic regression, hand-made features": (mlp(5, ()), quadratic),
        "MLP 16-16, raw x": (mlp(2, (16, 16)), lambda points: points),
    }
    grid_axis = np.linspace(-1.5, 1.5, 101, dtype="float32")
    grid = np.stack(np.meshgrid(grid_axis, grid_axis), -1).reshape(-1, 2)
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6), sharey=True)
    accuracy = {}
    for ax, (name, (model, features)) in zip(axes, models.items()):
        fit_steps(model, features(x), y, steps=lesson.budget(400, 1500), learning_rate=0.03, seed=lesson.seed)
        accuracy[name] = lesson.number(f"{name}: accuracy", float(np.mean(model(features(x)).numpy().argmax(-1) == y)))
        regions = model(features(grid)).numpy()[:, 1].reshape(101, 101)
        ax.contourf(grid_axis, grid_axis, regions, levels=[0, 0.5, 1], alpha=0.3, cmap="coolwarm")
        ax.scatter(x[:, 0], x[:, 1], c=y, s=4, cmap="coolwarm")
        ax.set_title(f"{name}\naccuracy {accuracy[name]:.2f}", fontsize=9)
        ax.set_xlabel("$x_1$")
    axes[0].set_ylabel("$x_2$")
    lesson.figure(fig, "rings", "Two rings: a linear model on the raw inputs fails; with hand-made or learned "
                  "features it succeeds.")
    lesson.table("Accuracy on the rings", ("model and its features", "accuracy"), list(accuracy.items()))
    lesson.check("a linear model on the raw coordinates fails (accuracy <= 0.7)",
                 accuracy["logistic regression, raw x"] <= 0.7, f"{accuracy['logistic regression, raw x']:.3f}")
    lesson.check("the same linear model on hand-made features succeeds (accuracy >= 0.95)",
                 accuracy["logistic regression, hand-made features"] >= 0.95,
                 f"{accuracy['logistic regression, hand-made features']:.3f}")
    lesson.check("the MLP learns the features from raw coordinates (accuracy >= 0.95)",
                 accuracy["MLP 16-16, raw x"] >= 0.95, f"{accuracy['MLP 16-16, raw x']:.3f}")


@atlas_entry(
    2,
    formula=r"h^{(0)} = x,\quad h^{(l)} = \sigma\big(W^{(l)} h^{(l-1)} + b^{(l)}\big),\quad "
    r"\hat y = \operatorname{softmax}\big(W^{(L)} h^{(L-1)} + b^{(L)}\big),\qquad "
    r"\#\text{parameters} = \sum_{l=1}^{L} (n_{l-1} + 1)\, n_l",
    see=("tfdl.models.build_mlp", "tfdl.models.MLPConfig", "tfdl.pipelines.load_sklearn_dataset"),
    configs=("digits_mlp",),
)
def neural_network_architecture(lesson: Lesson) -> None:
    """A basic (feed-forward, fully connected) neural network is a chain of **layers**.
    The **input layer** is the feature vector itself and has no weights. Each **hidden
    layer** $l$ holds $n_l$ units; a unit takes a weighted sum of every output of the
    layer before, adds its bias and passes the result through a non-linear
    **activation** $\\sigma$ (ReLU here). In matrix form a layer is one
    matrix-vector product, so it owns $n_{l-1} n_l$ weights and $n_l$ biases. The
    **output layer** maps the last hidden vector to what the task needs: one score
    per class turned into probabilities by a softmax (a single linear unit for
    regression).

    A **forward pass** evaluates the layers in order; the **loss** compares the output
    with the label; training adjusts every weight and bias to lower the loss, with
    gradients from backpropagation (question 6). Width (units per layer) and depth
    (number of layers) are the architecture's choices; everything else is learned.

    The example builds tfdl's MLP for 8×8 digits (64 inputs, hidden layers of 32 and
    16 units, 10 classes), counts each layer's parameters by the formula and against
    Keras, trains it briefly, and recomputes its forward pass in numpy from the
    trained weight matrices, layer by layer.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.models import build_model
    from tfdl.pipelines import load_sklearn_dataset

    digits = load_sklearn_dataset("digits")
    x, y = digits.features / 16.0, digits.labels  # pixels 0..16 scaled to 0..1
    train, test = slice(0, 1400), slice(1400, None)
    model = build_model("mlp", {"input_shape": (64,), "num_classes": 10, "hidden_units": (32, 16)})

    rows, by_formula, all_equal = [], 0, True
    for layer in model.layers[1:]:
        if not layer.weights:  # the activation layers compute but own no weights
            continue
        n_in, n_out = layer.kernel.shape
        count = (n_in + 1) * n_out
        by_formula += count
        all_equal &= count == layer.count_params()
        rows.append((layer.name, n_in, n_out, f"({n_in} + 1) × {n_out} = {count}", layer.count_params()))
    lesson.table("Parameters per layer", ("layer", "inputs", "units", "by the formula", "Keras count_params"), rows)
    lesson.number("parameters by the formula", by_formula)
    lesson.number("parameters, model.count_params()", model.count_params())

    fit_steps(model, x[train], y[train], steps=lesson.budget(500, 2000), learning_rate=0.01, seed=lesson.seed)
    accuracy = lesson.number("test accuracy", float(np.mean(model(x[test]).numpy().argmax(-1) == y[test])))

    # The forward pass by hand: one matrix product, bias and activation per layer.
    (w1, b1), (w2, b2), (w3, b3) = [(v[0].numpy(), v[1].numpy()) for v in
                                    (model.get_layer(n).weights for n in ("dense1", "dense2", "probabilities"))]
    h1 = np.maximum(x[test] @ w1 + b1, 0.0)
    h2 = np.maximum(h1 @ w2 + b2, 0.0)
    logits = h2 @ w3 + b3
    by_hand = np.exp(logits - logits.max(-1, keepdims=True))
    by_hand /= by_hand.sum(-1, keepdims=True)
    difference = float(np.abs(by_hand - model(x[test]).numpy()).max())
    lesson.number("largest |numpy forward pass - Keras|", difference)

    fig, axes = plt.subplots(1, 4, figsize=(11, 3), layout="constrained",
                             gridspec_kw={"width_ratios": [1, 2, 1.3, 1.3]})
    axes[0].imshow(x[test][0].reshape(8, 8), cmap="gray_r")
    axes[0].set_title(f"input: 64 pixels\n(label {y[test][0]})", fontsize=9)
    axes[0].axis("off")
    for ax, values, title in ((axes[1], h1[0], "hidden layer 1\n32 ReLU units"),
                              (axes[2], h2[0], "hidden layer 2\n16 ReLU units"),
                              (axes[3], by_hand[0], "output layer\nsoftmax over 10 classes")):
        ax.bar(np.arange(len(values)), values, color="tab:blue")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("unit")
    axes[1].set_ylabel("activation")
    axes[3].set_xticks(range(10))
    axes[3].set_xlabel("class")
    lesson.figure(fig, "forward_pass", "One test digit's forward pass: the input, each hidden layer's activations "
                  "and the output probabilities, computed in numpy from the trained weights.")
    lesson.check("each layer owns (inputs + 1) × units parameters, and they sum to model.count_params()",
                 all_equal and by_formula == model.count_params(),
                 f"{by_formula} by the formula, {model.count_params()} by Keras")
    lesson.check("the numpy forward pass equals the Keras model's output (max difference < 1e-5)",
                 difference < 1e-5, f"{difference:.2e}")
    lesson.check("trained briefly, the network classifies held-out digits (accuracy >= 0.85)",
                 accuracy >= 0.85, f"{accuracy:.3f}")


@atlas_entry(
    3,
    formula=r"t(x) = 2\,\mathrm{relu}(x) - 4\,\mathrm{relu}(x - \tfrac12),\qquad "
    r"\underbrace{t \circ t \circ \dots \circ t}_{k}\ \text{has } 2^k \text{ linear pieces};\qquad "
    r"\sum_{i=1}^{N} a_i\,\mathrm{relu}(w_i x + b_i) \text{ has at most } N + 1",
    see=("tfdl.models.build_mlp", "tfdl.models.MLPConfig"),
)
def shallow_vs_deep(lesson: Lesson) -> None:
    """A **shallow** network has one hidden layer; a **deep** one stacks several. Both are
    universal approximators: one wide enough hidden layer approximates any continuous
    function on a bounded domain. The difference is *efficiency*. A deep network
    composes functions, so later layers reuse what earlier ones computed; for
    functions with that compositional structure (images built from edges, parts and
    objects; sentences from words and phrases) depth can need exponentially fewer
    units than width. Deep networks also learn a hierarchy of features, one level per
    layer, which is what transfer learning reuses.

    The price is training: gradients pass through every layer and can vanish or
    explode (questions 8 and 9), so deep networks need careful initialization,
    normalization and residual connections, and gradient descent does not always find
    the efficient solution that depth makes possible. Shallow networks are easier to
    train and analyse but need many more units for the same function.

    The example makes the efficiency argument concrete with ReLU units. The tent map
    $t$ folds $[0, 1]$ onto itself with two ReLUs; composing it $k$ times gives a
    sawtooth with $2^k$ linear pieces, which a deep network with $k$ hidden layers of
    2 units computes exactly. A one-hidden-layer ReLU network with $N$ units is
    piecewise linear with at most $N + 1$ pieces, so with the same number of
    parameters it cannot follow the teeth however it is trained; it needs $2^k$ units.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np

    k = 6
    x = np.linspace(0.0, 1.0, 4097, dtype="float32")[:, None]
    target = x[:, 0]
    for _ in range(k):
        target = np.where(target < 0.5, 2 * target, 2 - 2 * target)

    def network(widths):
        return keras.Sequential([keras.Input((1,))] + [keras.layers.Dense(w, activation="relu") for w in widths]
                                + [keras.layers.Dense(1)])

    # Deep: k hidden layers of 2 units, each computing t of the layer before, weights set by hand.
    deep = network([2] * k)
    first = ([[1.0, 1.0]], [0.0, -0.5])  # relu(x), relu(x - 1/2)
    middle = ([[2.0, 2.0], [-4.0, -4.0]], [0.0, -0.5])  # the same of t = 2 relu(x) - 4 relu(x - 1/2)
    last = ([[2.0], [-4.0]], [0.0])  # t
    for i, layer in enumerate(deep.layers):
        layer.set_weights([np.array(w, "float32") for w in (first if i == 0 else last if i == k else middle)])

    # Shallow with as many parameters (3N + 1 = 6k + 1), trained by gradient descent, its kinks
    # spread over [0, 1] at the start (with Keras's zero biases they would all sit at x = 0).
    shallow = network([2 * k])
    kinks = (np.arange(2 * k, dtype="float32") + 0.5) / (2 * k)
    shallow.layers[0].set_weights([np.ones((1, 2 * k), "float32"), -kinks])
    fit_steps(shallow, x, target[:, None], steps=lesson.budget(1500, 6000), learning_rate=0.01, batch_size=512,
         seed=lesson.seed, loss="mse")

    # Shallow with 2^k units, one kink at each corner of the sawtooth, weights set by hand.
    pieces = 2**k
    wide = network([pieces])
    slopes = np.where(np.arange(pieces) % 2 == 0, 1.0, -1.0) * pieces
    wide.layers[0].set_weights([np.ones((1, pieces), "float32"), -np.arange(pieces, dtype="float32") / pieces])
    wide.layers[1].set_weights([np.diff(slopes, prepend=0.0)[:, None].astype("float32"), np.zeros(1, "float32")])

    def linear_pieces(y):  # kinks = runs of slope changes on the grid; pieces = kinks + 1
        changed = np.abs(np.diff(np.diff(y) / np.diff(x[:, 0]))) > 1e-2
        return int(changed[0] + np.sum(changed[1:] & ~changed[:-1])) + 1

    rows, mse = [], {}
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2), sharey=True, layout="constrained")
    models = {f"deep: {k} layers × 2 units": deep, f"shallow: {2 * k} units, trained": shallow,
              f"shallow: {pieces} units": wide}
    for ax, (name, model) in zip(axes, models.items()):
        y = model(x).numpy()[:, 0]
        mse[name] = float(np.mean((y - target) ** 2))
        rows.append((name, model.count_params(), linear_pieces(y), mse[name], 1 - mse[name] / target.var()))
        ax.plot(x[:, 0], target, color="0.75", lw=2.5, label=f"target: $t^{{{k}}}$ ({pieces} pieces)")
        ax.plot(x[:, 0], y, color="tab:red", lw=1, label="network")
        ax.set_title(f"{name}\n{model.count_params()} parameters, MSE {mse[name]:.1e}", fontsize=9)
        ax.set_xlabel("x")
    axes[0].set_ylabel("output")
    axes[0].legend(fontsize=7, loc="lower left")
    lesson.figure(fig, "sawtooth", f"The sawtooth t^{k}: exact with {k} layers of 2 units; out of reach for one hidden "
                  f"layer with as many parameters; exact again with {pieces} units in one layer.")
    lesson.table("Depth against width on the sawtooth", ("network", "parameters", "linear pieces", "MSE",
                                                         "variance explained"), rows)
    deep_name, shallow_name, wide_name = models
    for name in models:
        lesson.number(f"{name}: MSE", mse[name])
    explained = 1 - mse[shallow_name] / target.var()
    lesson.check(f"{k} layers of 2 units compute the {pieces}-piece sawtooth exactly (max error < 1e-4)",
                 np.abs(deep(x).numpy()[:, 0] - target).max() < 1e-4 and rows[0][2] == pieces,
                 f"{rows[0][2]} pieces, MSE {mse[deep_name]:.1e}")
    lesson.check("one hidden layer with the same parameter count, trained, explains under 30% of the variance",
                 explained < 0.3 and rows[1][2] <= 2 * k + 1, f"{explained:.1%}, {rows[1][2]} pieces")
    lesson.check(f"one hidden layer needs {pieces} units (and {wide.count_params()} parameters) to be exact",
                 np.abs(wide(x).numpy()[:, 0] - target).max() < 1e-4, f"MSE {mse[wide_name]:.1e}")


@atlas_entry(
    4,
    formula=r"\text{perceptron: } \hat y = [\,w^\top x + b > 0\,] \qquad "
    r"\text{MLP: } \hat y = \operatorname{softmax}\big(W_2\, \sigma(W_1 x + b_1) + b_2\big)",
    see=("tfdl.models.build_perceptron", "tfdl.models.build_mlp", "tfdl.pipelines.generate"),
    configs=("xor_perceptron", "xor_mlp"),
)
def perceptron_and_mlp(lesson: Lesson) -> None:
    """A **perceptron** is a single linear unit: it weighs its inputs, adds a bias and
    thresholds the sum, so its decision boundary is one straight line (a hyperplane).
    A **multi-layer perceptron (MLP)** stacks layers of such units with a non-linear
    activation between them; the hidden layer re-maps the inputs into features where
    the classes *are* linearly separable, so an MLP with one hidden layer can
    approximate any continuous function given enough units.

    XOR is the classic proof: no line separates {(0,1), (1,0)} from {(0,0), (1,1)}, so
    the best a perceptron can do is 3 corners of 4 (accuracy 0.75), while an MLP with a
    few hidden units fits all four. The example trains both on noisy XOR points and
    draws their decision regions.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.models import build_model
    from tfdl.pipelines import generate

    data = generate("xor", examples=400, seed=lesson.seed, params={"noise": 0.1})
    x, y = data.features, data.labels
    models = {
        "perceptron": build_model("perceptron", {"input_shape": (2,), "num_classes": 2}),
        "MLP, 8 hidden units": build_model("mlp", {"input_shape": (2,), "num_classes": 2, "hidden_units": (8,)}),
    }
    grid = np.stack(np.meshgrid(np.linspace(-0.5, 1.5, 81), np.linspace(-0.5, 1.5, 81)), -1).reshape(-1, 2)
    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    accuracy = {}
    for ax, (name, model) in zip(axes, models.items()):
        model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x, y, batch_size=32, epochs=lesson.budget(15, 150), verbose=0)
        accuracy[name] = lesson.number(f"{name} accuracy", model.evaluate(x, y, verbose=0)[1])
        regions = model.predict(grid, verbose=0).argmax(-1).reshape(81, 81)
        ax.contourf(np.linspace(-0.5, 1.5, 81), np.linspace(-0.5, 1.5, 81), regions, alpha=0.3, cmap="coolwarm")
        ax.scatter(x[:, 0], x[:, 1], c=y, s=6, cmap="coolwarm")
        ax.set_title(f"{name}: accuracy {accuracy[name]:.2f}")
    lesson.figure(fig, "xor_regions", "Decision regions on XOR: one line cannot separate the classes; a hidden layer can.")
    lesson.check("the perceptron cannot fit XOR (accuracy <= 0.75)", accuracy["perceptron"] <= 0.75,
                 f"{accuracy['perceptron']:.3f}")
    lesson.check("an MLP with one hidden layer fits XOR (accuracy 1.0)", accuracy["MLP, 8 hidden units"] == 1.0,
                 f"{accuracy['MLP, 8 hidden units']:.3f}")


@atlas_entry(
    5,
    formula=r"W_3\big(W_2 (W_1 x + b_1) + b_2\big) + b_3 = \underbrace{W_3 W_2 W_1}_{W}\, x "
    r"+ \underbrace{W_3 W_2 b_1 + W_3 b_2 + b_3}_{b}",
    see=("tfdl.models.build_mlp", "tfdl.models.MLPConfig", "tfdl.pipelines.generate"),
    configs=("xor_mlp",),
)
def role_of_activation_functions(lesson: Lesson) -> None:
    """An activation function is the non-linear function $\\sigma$ a unit applies to its
    weighted sum. It is what makes depth worth having: without it every layer is an
    affine map, a composition of affine maps is again affine, and a network of any
    depth computes exactly what a single linear layer computes (the formula). With
    it, each layer can bend and fold the space its input lives in, so a stack of
    layers represents curved decision boundaries and, with enough units, any
    continuous function.

    The choice of activation also shapes training: its derivative multiplies every
    gradient that flows back through the unit, so functions that saturate (sigmoid,
    tanh) shrink gradients while ReLU passes them unchanged where it is active
    (question 8). At the output, the activation fits the target instead: a softmax
    for class probabilities, a sigmoid for a yes/no probability, none (identity) for
    a real-valued regression target.

    The example trains the same three-hidden-layer network on XOR twice, once with
    the identity as activation and once with tanh. The identity network's three
    weight matrices multiply into one matrix that reproduces its output, and like a
    perceptron it cannot separate XOR; the tanh network fits it.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.models import build_model
    from tfdl.pipelines import generate

    data = generate("xor", examples=400, seed=lesson.seed, params={"noise": 0.1})
    x, y = data.features, data.labels
    grid_axis = np.linspace(-0.5, 1.5, 81, dtype="float32")
    grid = np.stack(np.meshgrid(grid_axis, grid_axis), -1).reshape(-1, 2)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.8), layout="constrained")
    accuracy, models = {}, {}
    for ax, activation in zip(axes, ("linear", "tanh")):
        model = build_model("mlp", {"input_shape": (2,), "num_classes": 2, "hidden_units": (8, 8, 8),
                                    "activation": activation})
        fit_steps(model, x, y, steps=lesson.budget(400, 1500), learning_rate=0.02, batch_size=32, seed=lesson.seed)
        models[activation] = model
        accuracy[activation] = lesson.number(f"{activation} accuracy", float(np.mean(model(x).numpy().argmax(-1) == y)))
        ax.contourf(grid_axis, grid_axis, model(grid).numpy()[:, 1].reshape(81, 81), levels=[0, 0.5, 1],
                    alpha=0.3, cmap="coolwarm")
        ax.scatter(x[:, 0], x[:, 1], c=y, s=6, cmap="coolwarm")
        ax.set_title(f"3 hidden layers, activation {activation}\naccuracy {accuracy[activation]:.2f}", fontsize=9)
        ax.set_xlabel("$x_1$")
        ax.set_ylabel("$x_2$")
    lesson.figure(fig, "xor_activation", "The same network on XOR without a non-linearity (one straight boundary) "
                  "and with tanh (the classes separated).")

    # Collapse: multiply the identity network's affine layers into one (W, b).
    w, b = np.eye(2, dtype="float32"), np.zeros(2, "float32")
    for name in ("dense1", "dense2", "dense3", "probabilities"):
        kernel, bias = (v.numpy() for v in models["linear"].get_layer(name).weights)
        w, b = w @ kernel, b @ kernel + bias
    logits = x @ w + b
    collapsed = np.exp(logits - logits.max(-1, keepdims=True))
    collapsed /= collapsed.sum(-1, keepdims=True)
    difference = lesson.number("largest |one affine layer - identity network|",
                               float(np.abs(collapsed - models["linear"](x).numpy()).max()))
    lesson.table("The identity network is one layer", ("", "value"), [
        ("parameters of the 3-hidden-layer identity network", models["linear"].count_params()),
        ("parameters of the single layer it collapses to", w.size + b.size),
        ("largest difference of their outputs", difference),
    ])
    lesson.check("without activations, the 3 hidden layers equal one affine layer (max difference < 1e-5)",
                 difference < 1e-5, f"{difference:.1e}")
    lesson.check("without activations the network cannot fit XOR (accuracy <= 0.75)",
                 accuracy["linear"] <= 0.75, f"{accuracy['linear']:.3f}")
    lesson.check("with tanh the same network fits XOR (accuracy >= 0.99)", accuracy["tanh"] >= 0.99,
                 f"{accuracy['tanh']:.3f}")


@atlas_entry(
    6,
    formula=r"\delta^{(L)} = \frac{\partial \mathcal L}{\partial z^{(L)}},\qquad "
    r"\delta^{(l)} = \big(W^{(l+1)\top} \delta^{(l+1)}\big) \odot \sigma'\big(z^{(l)}\big),\qquad "
    r"\frac{\partial \mathcal L}{\partial W^{(l)}} = \delta^{(l)}\, h^{(l-1)\top},\quad "
    r"\frac{\partial \mathcal L}{\partial b^{(l)}} = \delta^{(l)}",
)
def backpropagation(lesson: Lesson) -> None:
    """**Backpropagation** computes the gradient of the loss with respect to every weight
    of a network by applying the chain rule backwards through the layers. The forward
    pass computes and keeps each layer's pre-activation $z^{(l)}$ and output
    $h^{(l)}$. The backward pass starts from the loss's derivative at the output and,
    layer by layer, turns the error signal $\\delta^{(l+1)}$ into the gradients of
    that layer's weights (an outer product with the layer's input) and into the
    error signal of the layer below (multiply by the transposed weights, then by the
    activation's derivative). It is reverse-mode automatic differentiation, which is
    what `tf.GradientTape` does for any TensorFlow computation.

    Its significance is cost: one backward pass, costing about as much as a forward
    pass, yields all $P$ partial derivatives at once, where estimating them by finite
    differences needs $2P$ forward passes, and millions of parameters would be out of
    reach. Gradient descent and all its variants (SGD, momentum, Adam) only decide
    what to do *with* that gradient; backpropagation is what makes training deep
    networks affordable.

    The example writes the backward pass of a two-layer tanh network by hand in
    numpy, checks it against `tf.GradientTape` and against central finite
    differences, times both ways of getting the gradient, and trains the network with
    the hand-written gradient.
    """
    import time

    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(lesson.seed)
    n, d, hidden = 64, 8, 16
    x = rng.normal(size=(n, d))
    y = np.sin(x @ rng.normal(size=(d, 1)))
    params = {"w1": rng.normal(size=(d, hidden)) / np.sqrt(d), "b1": np.zeros(hidden),
              "w2": rng.normal(size=(hidden, 1)) / np.sqrt(hidden), "b2": np.zeros(1)}

    def loss(p):  # L = mean squared error of a tanh hidden layer and a linear output
        return np.mean((np.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"] - y) ** 2)

    def backprop(p):
        h = np.tanh(x @ p["w1"] + p["b1"])  # forward, keeping h
        delta2 = 2 * (h @ p["w2"] + p["b2"] - y) / n  # dL/d(output)
        delta1 = (delta2 @ p["w2"].T) * (1 - h**2)  # through w2, then tanh' = 1 - tanh^2
        return {"w1": x.T @ delta1, "b1": delta1.sum(0), "w2": h.T @ delta2, "b2": delta2.sum(0)}

    def finite_differences(p, eps=1e-6):
        grads = {}
        for name, value in p.items():
            grads[name] = np.zeros_like(value)
            for i in np.ndindex(value.shape):
                value[i] += eps
                up = loss(p)
                value[i] -= 2 * eps
                grads[name][i] = (up - loss(p)) / (2 * eps)
                value[i] += eps
        return grads

    variables = {name: tf.Variable(value) for name, value in params.items()}
    with tf.GradientTape() as tape:
        output = tf.tanh(x @ variables["w1"] + variables["b1"]) @ variables["w2"] + variables["b2"]
        tape_loss = tf.reduce_mean((output - y) ** 2)
    by_tape = {name: g.numpy() for name, g in zip(variables, tape.gradient(tape_loss, list(variables.values())))}

    start = time.perf_counter()
    for _ in range(100):
        by_hand = backprop(params)
    backprop_seconds = (time.perf_counter() - start) / 100
    start = time.perf_counter()
    numeric = finite_differences(params)
    numeric_seconds = time.perf_counter() - start

    def flat(grads):
        return np.concatenate([grads[name].ravel() for name in params])

    def relative_error(a, b):
        return float(np.abs(a - b).max() / np.abs(b).max())

    tape_error = lesson.number("relative error, hand-written vs GradientTape",
                               relative_error(flat(by_hand), flat(by_tape)))
    numeric_error = lesson.number("relative error, hand-written vs finite differences",
                                  relative_error(flat(by_hand), flat(numeric)))
    size = sum(v.size for v in params.values())
    speedup = lesson.number("finite differences time / backprop time", numeric_seconds / backprop_seconds)
    lesson.table("One gradient of the loss", ("method", "forward passes", "seconds"), [
        ("backpropagation (hand-written)", "1 (+ 1 backward)", backprop_seconds),
        ("central finite differences", f"2P = {2 * size}", numeric_seconds),
    ])

    losses = [loss(params)]
    for _ in range(lesson.budget(300, 1000)):  # plain gradient descent on the hand-written gradient
        for name, g in backprop(params).items():
            params[name] -= 0.1 * g
        losses.append(loss(params))
    lesson.number("loss before training", losses[0])
    lesson.number("loss after training", losses[-1])

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), layout="constrained")
    axes[0].plot(flat(by_tape), flat(by_hand), "o", ms=4, label="reference: tf.GradientTape")
    axes[0].plot(flat(numeric), flat(by_hand), "x", ms=4, label="reference: finite differences")
    axes[0].set_xlabel("partial derivative by the reference")
    axes[0].set_ylabel("by hand-written backprop")
    axes[0].set_title(f"all {size} partial derivatives agree", fontsize=9)
    axes[0].legend(fontsize=8)
    axes[1].plot(losses)
    axes[1].set_xlabel("gradient descent step")
    axes[1].set_ylabel("mean squared error")
    axes[1].set_title("training with the hand-written gradient", fontsize=9)
    lesson.figure(fig, "backprop", "Left: each partial derivative from the hand-written backward pass against "
                  "tf.GradientTape and finite differences. Right: gradient descent with it lowers the loss.")
    lesson.check("the hand-written backward pass equals tf.GradientTape (relative error < 1e-10, float64)",
                 tape_error < 1e-10, f"{tape_error:.1e}")
    lesson.check("it equals central finite differences (relative error < 1e-6)", numeric_error < 1e-6,
                 f"{numeric_error:.1e}")
    lesson.check("one backward pass is over 10x faster than finite differences", speedup > 10, f"{speedup:.0f}x")
    lesson.check("gradient descent on it halves the loss", losses[-1] < 0.5 * losses[0],
                 f"{losses[0]:.3f} -> {losses[-1]:.3f}")


@atlas_entry(
    7,
    formula=r"\begin{aligned}"
    r"&\mathrm{sigmoid}(x) = \frac{1}{1 + e^{-x}}, \quad \tanh(x) = \frac{e^{x} - e^{-x}}{e^{x} + e^{-x}}, \quad "
    r"\mathrm{ReLU}(x) = \max(0, x), \quad \mathrm{LeakyReLU}(x) = \max(\alpha x, x),\\"
    r"&\mathrm{ELU}(x) = \begin{cases} x & x > 0 \\ \alpha (e^{x} - 1) & x \le 0 \end{cases}, \quad "
    r"\mathrm{GELU}(x) = x\, \Phi(x), \quad \mathrm{SiLU}(x) = x\, \mathrm{sigmoid}(x), \quad "
    r"\mathrm{softplus}(x) = \log(1 + e^{x})"
    r"\end{aligned}",
    see=("tfdl.models.MLPConfig",),
)
def common_activation_functions(lesson: Lesson) -> None:
    """- **Sigmoid** squashes to $(0, 1)$; it is the output activation for a yes/no
      probability. In hidden layers it saturates: its derivative is at most $1/4$ and
      near zero for large $|x|$, and its outputs are not centred on zero.
    - **tanh** is a rescaled sigmoid, $2\\,\\mathrm{sigmoid}(2x) - 1$, with range
      $(-1, 1)$: zero-centred and with derivative up to 1, but it saturates too. It is
      still the activation inside LSTM and GRU cells.
    - **ReLU**, $\\max(0, x)$, is the default for hidden layers: cheap, derivative
      exactly 1 for positive inputs (no saturation), and sparse activations. A unit
      whose input stays negative gets zero gradient and can "die".
    - **Leaky ReLU** and **ELU** keep a small slope or a smooth exponential for
      negative inputs so that no unit dies; **SELU** is a scaled ELU whose constants
      keep activations normalized in deep plain MLPs (with LeCun-normal
      initialization).
    - **GELU** ($x\\Phi(x)$, $\\Phi$ the standard normal CDF) and **SiLU/Swish**
      ($x\\,\\mathrm{sigmoid}(x)$) are smooth ReLU-like curves that let small
      negative values through; they are standard in transformers (BERT and GPT use
      GELU).
    - **Softmax**, $e^{z_i}/\\sum_j e^{z_j}$, turns a vector of scores into a
      probability distribution: the output activation for one-of-$K$ classification.

    The example evaluates each Keras activation against its formula written
    independently in numpy, differentiates it with `tf.GradientTape` against its
    derivative written by hand, and tabulates the property that matters for training:
    how large the derivative can get and what it is far out on either side.
    """
    import math

    import keras
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    x = np.linspace(-6.0, 6.0, 1200)  # an even count: 0 itself, where ReLU has no derivative, is left out
    s = 1 / (1 + np.exp(-x))
    phi = np.vectorize(math.erf)(x / np.sqrt(2)) / 2 + 0.5  # standard normal CDF
    alpha, scale = 1.6732632423543772, 1.0507009873554805  # SELU's constants
    formulas = {  # name: (value, derivative), in numpy
        "sigmoid": (s, s * (1 - s)),
        "tanh": (np.tanh(x), 1 - np.tanh(x) ** 2),
        "relu": (np.maximum(x, 0), (x > 0) * 1.0),
        "leaky_relu": (np.where(x > 0, x, 0.2 * x), np.where(x > 0, 1.0, 0.2)),
        "elu": (np.where(x > 0, x, np.exp(x) - 1), np.where(x > 0, 1.0, np.exp(x))),
        "selu": (scale * np.where(x > 0, x, alpha * (np.exp(x) - 1)), scale * np.where(x > 0, 1.0, alpha * np.exp(x))),
        "gelu": (x * phi, phi + x * np.exp(-x * x / 2) / np.sqrt(2 * np.pi)),
        "silu": (x * s, s + x * s * (1 - s)),
        "softplus": (np.logaddexp(0, x), s),
    }
    inputs = tf.constant(x, tf.float64)
    rows, value_error, slope_error = [], 0.0, 0.0
    measured = {}
    for name, (value, slope) in formulas.items():
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = keras.activations.get(name)(inputs)
        derivative = tape.gradient(outputs, inputs).numpy()
        value_error = max(value_error, float(np.abs(outputs.numpy() - value).max()))
        slope_error = max(slope_error, float(np.abs(derivative - slope).max()))
        measured[name] = derivative
        rows.append((name, f"[{value.min():.3g}, {value.max():.3g}]", derivative.max(), derivative[0], derivative[-1]))
    scores = np.array([[2.0, 1.0, 0.1], [-3.0, 0.0, 3.0]])
    softmax = np.exp(scores) / np.exp(scores).sum(-1, keepdims=True)
    value_error = max(value_error, float(np.abs(keras.activations.softmax(scores).numpy() - softmax).max()))
    lesson.table("Each activation on [-6, 6], derivatives by tf.GradientTape",
                 ("activation", "output range", "largest derivative", "derivative at -6", "derivative at +6"), rows)
    lesson.number("largest |Keras activation - numpy formula|", value_error)
    lesson.number("largest |GradientTape derivative - derivative by hand|", slope_error)
    for name in ("sigmoid", "tanh", "relu"):
        lesson.number(f"{name}: largest derivative", float(measured[name].max()))

    shown = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "silu")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    for name in shown:
        axes[0].plot(x, formulas[name][0], label=name)
        axes[1].plot(x, measured[name], label=name)
    axes[0].set_ylim(-2, 4)
    axes[0].set_title("activation f(x)", fontsize=10)
    axes[0].set_ylabel("f(x)")
    axes[1].set_ylabel("f'(x)")
    axes[1].set_title("derivative f'(x), by tf.GradientTape", fontsize=10)
    for ax in axes:
        ax.set_xlabel("x")
        ax.axhline(0, color="0.8", lw=0.8, zorder=0)
    axes[1].legend(fontsize=8)
    lesson.figure(fig, "activations", "Common activations and their derivatives: sigmoid and tanh flatten out on "
                  "both sides; ReLU and its relatives keep slope 1 for positive inputs.")
    lesson.check("every Keras activation, softmax included, equals its formula written in numpy (max error < 1e-6)",
                 value_error < 1e-6, f"{value_error:.1e}")
    lesson.check("every derivative by tf.GradientTape equals the derivative by hand (max error < 1e-6)",
                 slope_error < 1e-6, f"{slope_error:.1e}")
    sigmoid_peak, far = measured["sigmoid"].max(), max(measured["sigmoid"][0], measured["tanh"][-1])
    lesson.check("sigmoid and tanh saturate: sigmoid' <= 1/4 everywhere, both below 0.01 at |x| = 6, while "
                 "relu' = 1 for every positive x",
                 sigmoid_peak <= 0.25 and far < 0.01 and bool(np.all(measured["relu"][x > 0] == 1.0)),
                 f"max sigmoid' {sigmoid_peak:.4f}, sigmoid'(-6) {measured['sigmoid'][0]:.4f}, "
                 f"tanh'(6) {measured['tanh'][-1]:.5f}")
