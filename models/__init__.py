"""The model zoo: data sets (data), the Fast & Deep TTFS network (ttfs, train) and the Bacho & Chu multi-spike
network (multispike, train_multispike), and the committed checkpoints (zoo)."""
