"""tfdl.layers: custom Keras 3 layers, each registered for serialization (package "tfdl")."""
