"""Seed-generator state in `.keras` files, so a model loaded to go on training draws fresh noise.

Keras saves no `SeedGenerator` state: a layer or model that draws random
numbers (the VAE's `Sampling`, a GAN's latent noise, a detector's RoI
sampling) would, once loaded, draw its first step's numbers again, and a
resumed run would differ from an uninterrupted one. Mixing `SeedState` in
before the Keras base class saves each generator's state with the weights.
"""

from __future__ import annotations

_PREFIX = "seed_generator_"


class SeedState:
    """Mixin for a `keras.layers.Layer` or `keras.Model` subclass: save and load its seed generators' states."""

    def save_own_variables(self, store):
        super().save_own_variables(store)
        for index, generator in enumerate(self._seed_generators):
            store[f"{_PREFIX}{index}"] = generator.state

    def load_own_variables(self, store):
        seeds = {k for k in store.keys() if str(k).startswith(_PREFIX)}
        super().load_own_variables({k: store[k] for k in store.keys() if k not in seeds})
        # Files saved before seed states were kept have none: those generators start afresh.
        for index, generator in enumerate(self._seed_generators):
            if f"{_PREFIX}{index}" in seeds:
                generator.state.assign(store[f"{_PREFIX}{index}"])
