"""Time classifying a whole genome record (e.g. E. coli, 4.6 Mbp) in one predict_proba call on a GPU.

The classifier is fitted for one epoch on random sequences first: this measures inference speed and
memory at several window lengths, not accuracy.

    python benchmarks/classify_genome.py ../shared/data/genomes/GCF_000005845.2_ASM584v2_genomic.fna.gz
"""
import sys
import time

import numpy as np
import torch

from seqmamba import MambaSequenceClassifier
from seqmamba.datasets.fasta import FastaFile

name, seq = next(iter(FastaFile(sys.argv[1]).records()))
rng = np.random.default_rng(0)
X = ["".join(rng.choice(list("ACGT"), 2000)) for _ in range(64)]
y = [i % 2 for i in range(64)]
for device, max_len in (("cuda", 1024), ("cuda", 65536), ("cuda", 1_048_576)):
    clf = MambaSequenceClassifier(d_model=128, n_layers=4, max_len=max_len, max_epochs=1, device=device,
                                  random_state=0, rc_equivariant=True).fit(X, y)
    clf.predict_proba([seq[:100_000]])  # compile/warm up
    torch.cuda.synchronize()
    start = time.perf_counter()
    proba = clf.predict_proba([seq])
    torch.cuda.synchronize()
    print(f"{name} {len(seq):,} bp, d_model 128 x 4 layers rc-equivariant, max_len {max_len:,}, {device}: "
          f"{time.perf_counter() - start:.2f} s, peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB, "
          f"proba {proba.round(3).tolist()}", flush=True)
    torch.cuda.reset_peak_memory_stats()
sys.exit(0)
