"""An equal tuning budget for every family (Lucic et al. 2018): search spaces, the study, its command and its report."""
