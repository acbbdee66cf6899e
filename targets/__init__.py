"""Target descriptions (*.toml, description) and the back ends that share one interface (backends: bitsim, lava,
loihi2). Imports with numpy + nir only: the Lava worker runs it on Python 3.10 with numpy < 2."""
