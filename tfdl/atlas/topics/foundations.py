"""Atlas entries 1-7: what deep learning is, the parts of a network, perceptrons, activations, backpropagation."""

from __future__ import annotations

from tfdl.atlas.entry import atlas_entry
from tfdl.atlas.lesson import Lesson


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
        model.fit(x, y, batch_size=32, epochs=lesson.budget(40, 150), verbose=0)
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
