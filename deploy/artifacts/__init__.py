"""The typed artifacts the stages pass along: semantics, float network, discrete and quantized networks,
stimulus, tolerances, comparison and verdict. Plain immutable data; no stage logic."""
