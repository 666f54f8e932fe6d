"""tfdl.losses: custom losses that reduce and weight like Keras built-ins."""
