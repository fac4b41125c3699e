"""Readers for the data seqmamba works on: FASTA genomes, labelled sequence sets, time-series frames."""
