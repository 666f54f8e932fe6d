"""Every atlas entry, gathered from the topic modules of `tfdl.atlas.topics`.

Topic modules import only the standard library and numpy at import time
(TensorFlow loads inside the examples), so listing the atlas is fast.
"""

from __future__ import annotations

import importlib

from tfdl.atlas.entry import Entry, registered_entries
from tfdl.atlas.questions import QUESTIONS

TOPICS: tuple[str, ...] = (
    "foundations",  # 1-7: what deep learning is, neurons, perceptrons, activations, backpropagation
    "training_dynamics",  # 8-10: vanishing and exploding gradients, over- and underfitting
    "optimization",  # 11-17: gradient descent, schedules, momentum, Adam, initialization
    "regularization",  # 18-20: L1/L2, dropout, early stopping
    "convolution",  # 21-25
    "recurrence",  # 26-30
    "attention",  # 31-33, 38-39: transformers, self-attention, positions, encoder-decoder
    "generative",  # 34-37, 81-90: GANs and VAEs
    "practice",  # 40-50: ResNets, imbalance, augmentation, transfer learning, evaluation, batch norm
    "frameworks",  # 51-60: TensorFlow, Keras, tf.data, and their PyTorch counterparts
    "language",  # 61-70
    "vision",  # 71-80
    "reinforcement",  # 91-100
)


def entries() -> list[Entry]:
    """All written entries, by question number."""
    for topic in TOPICS:
        try:
            importlib.import_module(f"tfdl.atlas.topics.{topic}")
        except ModuleNotFoundError as error:
            if error.name != f"tfdl.atlas.topics.{topic}":
                raise
    return [entry for _, entry in sorted(registered_entries().items())]


def get_entry(number: int) -> Entry:
    """The entry for question `number`; a clear error for a number out of range or not yet written."""
    if not 1 <= number <= len(QUESTIONS):
        raise KeyError(f"question {number}: the atlas answers questions 1 to {len(QUESTIONS)} (see `tfdl atlas list`)")
    found = {entry.number: entry for entry in entries()}
    if number not in found:
        raise KeyError(f"question {number} ({QUESTIONS[number - 1]!r}) has no atlas entry yet")
    return found[number]


def unanswered() -> list[int]:
    """The question numbers without an entry."""
    answered = {entry.number for entry in entries()}
    return [n for n in range(1, len(QUESTIONS) + 1) if n not in answered]
