"""Real DNA results: Mamba classifiers trained from scratch next to a 6-mer logistic regression.

1. The four GUE tasks in ../shared/data/dna/gue/ (train on train, early stopping on dev, report test).
2. Genome of origin: 10 kbp windows of the four genomes in ../shared/data/genomes/; train on windows
   from the first 80 % of every record, test on the last 20 % (no window crosses the cut).

Writes a Markdown table (accuracy, MCC, ROC AUC on test). Sized for ONE call on one H100 in under
8 minutes (each model also has a wall-clock cap, ``max_time``).

    PYTHONPATH=$PWD python3 benchmarks/dna_results.py --out docs/results/dna.md           # GPU
    PYTHONPATH=$PWD python3 benchmarks/dna_results.py --smoke --out /tmp/dna_smoke.md     # CPU, seconds
    PYTHONPATH=$PWD python3 benchmarks/dna_results.py --baselines-only --out /tmp/kmer.md # CPU, k-mers
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, matthews_corrcoef, roc_auc_score

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
GUE_TASKS = ("prom_core_tata", "prom_300_tata", "mouse_tfbs_2", "mouse_tfbs_3")
GENOMES = {"E. coli": "GCF_000005845.2_ASM584v2_genomic.fna.gz", "A. thaliana": "A.thaliana.fa.gz",
           "C. elegans": "C.elegans.fa.gz", "D. melanogaster": "D.melanogaster.fa.gz"}

# Per task: model and schedule. GUE sets are small (2-5k sequences of 70-300 bp).
GUE_MODEL = {"d_model": 128, "n_layers": 4, "d_state": 16, "rc_equivariant": True, "batch_size": 64, "lr": 2e-3,
             "max_epochs": 20, "early_stopping": True, "n_iter_no_change": 5, "max_time": 65.0}
GENOME_MODEL = {"d_model": 128, "n_layers": 4, "d_state": 16, "rc_equivariant": True, "batch_size": 32,
                "lr": 2e-3, "max_len": 2048, "max_epochs": 12, "early_stopping": True, "n_iter_no_change": 4,
                "max_time": 100.0}
SMOKE_MODEL = {"d_model": 16, "n_layers": 1, "d_state": 4, "rc_equivariant": False, "batch_size": 16, "lr": 3e-3,
               "max_epochs": 1, "early_stopping": False, "max_time": None}


def scores(y_true: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    """Accuracy, MCC and ROC AUC (binary, or one-vs-rest macro for more classes)."""
    predicted = classes[proba.argmax(1)]
    if len(classes) == 2:
        auc = roc_auc_score(y_true == classes[1], proba[:, 1])
    else:
        auc = roc_auc_score(y_true, proba, multi_class="ovr", labels=classes)
    return {"acc": accuracy_score(y_true, predicted), "mcc": matthews_corrcoef(y_true, predicted), "auc": auc}


def kmer_scores(train, dev, test, k: int = 6) -> dict[str, float]:
    """6-mer logistic regression; C picked on the dev split from a small grid."""
    from seqmamba.baselines.kmer import kmer_logistic_regression

    best = None
    for c in (0.1, 1.0, 10.0):
        model = kmer_logistic_regression(k=k, C=c).fit(*train)
        dev_acc = model.score(*dev)
        if best is None or dev_acc > best[0]:
            best = (dev_acc, model)
    model = best[1]
    return scores(np.asarray(test[1]), model.predict_proba(test[0]), model.classes_)


def mamba_scores(train, dev, test, params: dict, device: str, seed: int) -> dict[str, float]:
    from seqmamba import MambaSequenceClassifier

    max_len = params.pop("max_len", max(len(s) for s in train[0]))
    clf = MambaSequenceClassifier(**params, max_len=max_len, device=device, random_state=seed)
    start = time.perf_counter()
    clf.fit(*train, eval_set=dev)
    fit_s = time.perf_counter() - start
    result = scores(np.asarray(test[1]), clf.predict_proba(test[0]), clf.classes_)
    result.update(fit_s=fit_s, steps=clf.n_iter_)
    return result


def load_gue(task: str, limit: int | None) -> tuple:
    from seqmamba.datasets.labelled import read_labelled_table

    splits = []
    for name in ("train", "dev", "test"):
        X, y = read_labelled_table(DATA / "dna" / "gue" / task / f"{name}.csv")
        if limit is not None:
            X, y = X[:limit], y[:limit]
        splits.append((X, y))
    return tuple(splits)


def genome_windows(size: int, train_stride: int, limit: int | None) -> tuple:
    """(train, dev, test) of windows; dev is the last 10 % of every record's training part."""
    from seqmamba.datasets.fasta import FastaFile

    train, dev, test = ([], []), ([], []), ([], [])
    for label, filename in GENOMES.items():
        taken = 0
        for _, seq in FastaFile(DATA / "genomes" / filename).records():
            cut = int(len(seq) * 0.8)
            dev_cut = int(cut * 0.9)
            parts = ((train, 0, dev_cut, train_stride), (dev, dev_cut, cut, size), (test, cut, len(seq), size))
            for (xs, ys), lo, hi, stride in parts:
                for start in range(lo, hi - size + 1, stride):
                    window = seq[start:start + size]
                    if window.upper().count("N") > size // 10:
                        continue
                    xs.append(window)
                    ys.append(label)
            taken += 1
            if limit is not None and taken >= 1:
                break
    if limit is not None:
        train, dev, test = (_every_class(s, limit) for s in (train, dev, test))
    return train, dev, test


def _every_class(split: tuple, per_class: int) -> tuple:
    xs, ys = split
    keep = [i for label in sorted(set(ys)) for i in [j for j, y in enumerate(ys) if y == label][:per_class]]
    return [xs[i] for i in keep], [ys[i] for i in keep]


def row(task: str, n: tuple, mamba: dict | None, kmer: dict) -> str:
    m = (f"{mamba['acc']:.3f} | {mamba['mcc']:.3f} | {mamba['auc']:.3f} | {mamba['fit_s']:.0f} s / {mamba['steps']}"
         if mamba else "- | - | - | -")
    k = f"{kmer['acc']:.3f} | {kmer['mcc']:.3f} | {kmer['auc']:.3f}"
    return f"| {task} | {n[0]:,} / {n[1]:,} / {n[2]:,} | {m} | {k} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="docs/results/dna.md")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="Tiny subsets and model, CPU: checks it runs.")
    parser.add_argument("--baselines-only", action="store_true", help="Only the 6-mer baselines.")
    parser.add_argument("--tasks", nargs="*", default=[*GUE_TASKS, "genome_of_origin"])
    parser.add_argument("--data", default=None, help="Folder holding dna/gue/ and genomes/ [../shared/data].")
    args = parser.parse_args()
    if args.data:
        global DATA
        DATA = Path(args.data)

    import torch

    device = "cpu" if args.smoke else args.device
    started = time.perf_counter()
    lines = []
    for task in args.tasks:
        t0 = time.perf_counter()
        if task == "genome_of_origin":
            size, stride = (1000, 1000) if args.smoke else (10_000, 5_000)
            train, dev, test = genome_windows(size, stride, 8 if args.smoke else None)
            params = dict(SMOKE_MODEL, max_len=512) if args.smoke else dict(GENOME_MODEL)
        else:
            train, dev, test = load_gue(task, 64 if args.smoke else None)
            params = dict(SMOKE_MODEL) if args.smoke else dict(GUE_MODEL)
        kmer = kmer_scores(train, dev, test)
        mamba = None if args.baselines_only else mamba_scores(train, dev, test, params, device, args.seed)
        line = row(task, (len(train[0]), len(dev[0]), len(test[0])), mamba, kmer)
        lines.append(line)
        print(line, f"({time.perf_counter() - t0:.0f} s)", flush=True)

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() and device != "cpu" else "CPU"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    header = [
        "# DNA classification results (trained from scratch)",
        "",
        f"Command, on {gpu} (torch {torch.__version__}, {platform.python_version()}), at commit `{commit}`:",
        "",
        "    PYTHONPATH=$PWD python3 benchmarks/dna_results.py" + (" --smoke" if args.smoke else "")
        + (" --baselines-only" if args.baselines_only else "") + f" --out {args.out}",
        "",
        f"Total {time.perf_counter() - started:.0f} s. Mamba: `MambaSequenceClassifier` "
        f"({'smoke size' if args.smoke else 'd_model 128, 4 bidirectional layers, RC-equivariant'}), early "
        "stopping on the dev split (genome task: the last 10 % of each record's training part), test "
        "metrics. 6-mer: k-mer frequencies -> logistic regression, C chosen on dev. ROC AUC is one-vs-rest "
        "macro for the 4-class genome task. Genome of origin: 10 kbp windows (training windows every 5 kbp, "
        "classified by 2,048-bp windows pooled), first 80 % of every record for training, last 20 % for test.",
        "",
        "| task | train / dev / test | Mamba acc | Mamba MCC | Mamba ROC AUC | fit time / steps "
        "| 6-mer acc | 6-mer MCC | 6-mer ROC AUC |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join([*header, *lines]) + "\n")
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
