"""Scoring generators: evaluation during and after training, the diversity statistic behind the collapse flag, best-checkpoint selection, and scoring models ganbench did not train."""
