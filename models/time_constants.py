"""The multi-spike model's time constants (Bacho & Chu 2023): time in units of tau_mem, tau_syn = tau_mem / 2, the
ratio its closed-form spike times solve for (models/multispike.py). Kept apart from that torch module so that a zoo
checkpoint loads and exports without torch."""

TAU_MEM = 1.0
TAU_SYN = 0.5 * TAU_MEM
