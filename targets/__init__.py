"""Target descriptions and back ends (bitsim now; lava and loihi2 later). Imports with numpy + nir only."""
