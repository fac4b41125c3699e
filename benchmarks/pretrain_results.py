"""Does genome pretraining help? Pretrain, probe and fine-tune on the shared genomes and GUE.

Stages (each writes ``<results>/<stage>.json``; ``report`` turns them into Markdown):

1. ``pretrain``: ``seqmamba pretrain`` on the genomes (bidirectional, RC-equivariant, masked nucleotides),
   every record's last ``--holdout`` share held out; then masked accuracy on held-out windows next to a
   k-mer context floor (the centre base predicted from k bases on each side, counted on the training
   regions; k = 1, 2, 3) and a left-only Markov model of order 3.
2. ``ecoli``: E. coli windows labelled coding (inside one CDS) or intergenic (no annotated feature), from
   its GFF; train on the first 70 % of the genome, dev 70-80 %, test the last 20 % (the region pretraining
   held out). Logistic regression on frozen embeddings of (a) the pretrained encoder, (b) the same
   architecture untrained, (c) 6-mer counts; then fine-tuning from (a) against training from scratch.
3. ``gue``: the four GUE tasks, fine-tuned from the pretrained encoder against from scratch (MCC on test).

    PYTHONPATH=$PWD python3 benchmarks/pretrain_results.py --stages pretrain --data <dir> --results R   # GPU
    PYTHONPATH=$PWD python3 benchmarks/pretrain_results.py --stages ecoli gue report --data <dir> --results R
    PYTHONPATH=$PWD python3 benchmarks/pretrain_results.py --smoke --stages all --results /tmp/r        # CPU

``--data`` holds ``genomes/`` and ``gue/`` as ``../shared/data/genomes`` and ``../shared/data/dna/gue``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
GENOME_FILES = ("GCF_000005845.2_ASM584v2_genomic.fna.gz", "A.thaliana.fa.gz", "C.elegans.fa.gz",
                "D.melanogaster.fa.gz")
ECOLI = "GCF_000005845.2_ASM584v2_genomic"
GUE_TASKS = ("prom_core_tata", "prom_300_tata", "mouse_tfbs_2", "mouse_tfbs_3")

# Sizes: the full run fits one H100 call per stage; --smoke checks the plumbing on a CPU in a minute.
FULL = {"pretrain": {"d_model": 128, "n_layers": 4, "d_state": 16, "window": 2048, "batch_size": 64,
                     "lr": 2e-3, "max_steps": 4000, "max_time": 270},
        "mlm_windows": 256, "ecoli_window": 200, "ecoli_per_class": (1500, 250, 500),
        "finetune": {"batch_size": 64, "lr": 2e-3, "max_epochs": 12, "n_iter_no_change": 4, "max_time": 60.0},
        "encoder_lr_scale": 0.25, "gue_limit": None}
SMOKE = {"pretrain": {"d_model": 16, "n_layers": 1, "d_state": 4, "window": 256, "batch_size": 8,
                      "lr": 3e-3, "max_steps": 30, "max_time": 20},
         "mlm_windows": 8, "ecoli_window": 200, "ecoli_per_class": (40, 10, 20),
         "finetune": {"batch_size": 16, "lr": 3e-3, "max_epochs": 1, "n_iter_no_change": 1, "max_time": None},
         "encoder_lr_scale": 0.25, "gue_limit": 48}

# A CPU-sized run (2 cores): a smaller encoder and fewer windows; --pretrain-time sets its length.
CPU = {"pretrain": {"d_model": 64, "n_layers": 2, "d_state": 16, "window": 512, "batch_size": 16,
                    "lr": 2e-3, "max_steps": 3000, "max_time": 600},
       "mlm_windows": 64, "ecoli_window": 200, "ecoli_per_class": (400, 100, 200),
       "finetune": {"batch_size": 32, "lr": 2e-3, "max_epochs": 6, "n_iter_no_change": 3, "max_time": 90.0},
       "encoder_lr_scale": 0.25, "gue_limit": 800}

CODE = np.full(256, 4, dtype=np.uint8)  # A C G T -> 0..3, anything else 4 (not a base)
for _i, _letters in enumerate(("Aa", "Cc", "Gg", "TtUu")):
    for _ch in _letters:
        CODE[ord(_ch)] = _i


def read_genomes(folder: Path, names=GENOME_FILES) -> dict[str, str]:
    from seqmamba.datasets.fasta import FastaFile

    records = {}
    for name in names:
        for record, seq in FastaFile(folder / name).records():
            records[f"{name}:{record}"] = seq
    return records


def split_point(length: int, holdout: float) -> int:
    """First held-out position of a record: its last ``holdout`` share (rounded down, as `seqmamba pretrain`
    holds it out) is never trained on."""
    return length - int(np.floor(length * holdout))


# -- stage 1: pretraining, masked accuracy, k-mer floor -------------------------------------------------


def pretrain(args, sizes: dict) -> dict:
    p = sizes["pretrain"]
    genomes = [str(Path(args.data) / "genomes" / name) for name in GENOME_FILES]
    cmd = [sys.executable, "-m", "seqmamba.pipelines.cli", "pretrain", *genomes, "-o", str(args.model),
           "--d-model", str(p["d_model"]), "--n-layers", str(p["n_layers"]), "--d-state", str(p["d_state"]),
           "--rc-equivariant", "--window", str(p["window"]), "--batch-size", str(p["batch_size"]),
           "--lr", str(p["lr"]), "--max-steps", str(p["max_steps"]), "--max-time", str(p["max_time"]),
           "--valid-frac", str(args.holdout),
           "--device", args.device, "--seed", str(args.seed), "--overwrite", "-q"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - start
    metrics = [json.loads(line) for line in (Path(args.model) / "training" / "metrics.jsonl").read_text().splitlines()
               ] if (Path(args.model) / "training" / "metrics.jsonl").exists() else []
    result = {"command": " ".join(cmd[1:]), "wall_s": wall, "metrics_tail": metrics[-3:]}
    result.update(masked_accuracy(args, sizes))
    return result


def masked_accuracy(args, sizes: dict) -> dict:
    """Masked accuracy of the pretrained model and of k-mer floors, at the same held-out positions."""
    import torch

    from seqmamba import MambaEmbedder
    from seqmamba.objectives import IGNORE, mask_nucleotides
    from seqmamba.tokenizers.dna import DNATokenizer
    from seqmamba.training.device import resolve_device

    genomes = read_genomes(Path(args.data) / "genomes")
    window = sizes["pretrain"]["window"]
    rng = np.random.default_rng(args.seed + 1)
    # Held-out windows, records weighted by their held-out length.
    held = {k: (split_point(len(s), args.holdout), len(s)) for k, s in genomes.items()}
    names = [k for k, (a, b) in held.items() if b - a >= window]
    weights = np.array([held[k][1] - held[k][0] - window + 1 for k in names], dtype=float)
    picks = rng.choice(len(names), size=sizes["mlm_windows"], p=weights / weights.sum())
    windows = []
    for i in picks:
        lo, hi = held[names[i]]
        start = int(rng.integers(lo, hi - window + 1))
        windows.append(genomes[names[i]][start:start + window])

    tok = DNATokenizer()
    ids = torch.as_tensor(np.stack([tok.encode(w) for w in windows]).astype(np.int64))  # (n, window)
    corrupted, targets = mask_nucleotides(ids, 0.15, torch.Generator().manual_seed(args.seed))
    chosen = targets != IGNORE

    emb = MambaEmbedder.load(args.model, device=args.device)
    model = emb.model_.to(resolve_device(args.device)).eval()
    device = next(model.parameters()).device
    correct = total = 0
    with torch.inference_mode():
        for b in range(0, len(ids), 16):
            x = corrupted[b:b + 16].to(device)
            logits = model(x, torch.ones_like(x)).float().cpu()  # (b, window, vocab)
            pred = logits[..., 1:5].argmax(-1) + 1
            sel = chosen[b:b + 16]
            correct += int((pred[sel] == ids[b:b + 16][sel]).sum())
            total += int(sel.sum())
    out = {"masked_positions": total, "model_acc": correct / total}

    # k-mer floors: counted on the training regions of every record, scored at the same masked positions.
    train_codes = [CODE[np.frombuffer(s[:split_point(len(s), args.holdout)].encode(), dtype=np.uint8)]
                   for s in genomes.values()]
    codes = np.stack([CODE[np.frombuffer(w.encode(), dtype=np.uint8)] for w in windows])  # (n, window)
    rows, cols = np.nonzero(chosen.numpy())
    for k in (1, 2, 3):
        out[f"context_{k}+{k}_acc"] = context_floor(train_codes, codes, rows, cols, k, k)
    out["markov_left_3_acc"] = context_floor(train_codes, codes, rows, cols, 3, 0)
    return out


def context_floor(train: list[np.ndarray], codes: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                  left: int, right: int) -> float:
    """Accuracy of predicting a base from ``left`` bases before and ``right`` after it (most frequent
    centre base of that context in ``train``); positions whose context leaves the window or holds a
    non-base fall back to the most frequent base overall."""
    span = left + right
    table = np.zeros((4**span, 4), dtype=np.int64)
    for seq in train:
        if len(seq) <= span:
            continue
        view = np.lib.stride_tricks.sliding_window_view(seq, span + 1)  # (n, span + 1)
        centre = view[:, left]
        context = np.delete(view, left, axis=1)
        ok = (view < 4).all(axis=1)
        key = context[ok].astype(np.int64) @ (4 ** np.arange(span - 1, -1, -1, dtype=np.int64))
        np.add.at(table, (key, centre[ok]), 1)
    best = table.argmax(1)
    overall = int(table.sum(0).argmax())
    hits = 0
    for r, c in zip(rows, cols):
        truth = codes[r, c]
        if c - left < 0 or c + right >= codes.shape[1]:
            hits += overall == truth
            continue
        ctx = np.concatenate([codes[r, c - left:c], codes[r, c + 1:c + 1 + right]])
        if (ctx >= 4).any():
            hits += overall == truth
            continue
        hits += best[int(ctx.astype(np.int64) @ (4 ** np.arange(span - 1, -1, -1, dtype=np.int64)))] == truth
    return hits / max(1, len(rows))


# -- stage 2: E. coli coding vs intergenic --------------------------------------------------------------


def ecoli_task(data: Path, window: int, per_class: tuple[int, int, int], seed: int) -> tuple:
    """(train, dev, test) of (sequences, labels): coding / intergenic windows split by genome position."""
    from seqmamba.datasets.fasta import FastaFile

    (_, seq), = list(FastaFile(data / "genomes" / f"{ECOLI}.fna.gz").records())
    n = len(seq)
    coding = np.zeros(n + 1, dtype=np.int64)
    feature = np.zeros(n + 1, dtype=np.int64)
    with gzip.open(data / "genomes" / f"{ECOLI}.gff.gz", "rt") as handle:
        for line in handle:
            if line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) < 8 or cols[2] == "region":
                continue
            lo, hi = int(cols[3]) - 1, int(cols[4])  # 0-based, end exclusive
            feature[lo] += 1
            feature[hi] -= 1
            if cols[2] == "CDS":
                coding[lo] += 1
                coding[hi] -= 1
    in_cds = np.cumsum(coding)[:n] > 0
    in_feature = np.cumsum(feature)[:n] > 0
    cds_sum = np.concatenate([[0], np.cumsum(in_cds)])
    feat_sum = np.concatenate([[0], np.cumsum(in_feature)])
    bounds = (0, int(n * 0.7), int(n * 0.8), n)
    rng = np.random.default_rng(seed)
    splits = []
    for part, limit in zip(range(3), per_class):
        lo, hi = bounds[part], bounds[part + 1]
        starts = np.arange(lo, hi - window + 1, window // 4)
        ends = starts + window
        is_coding = (cds_sum[ends] - cds_sum[starts]) == window
        is_inter = (feat_sum[ends] - feat_sum[starts]) == 0
        take = min(limit, int(is_coding.sum()), int(is_inter.sum()))  # balanced classes
        xs, ys = [], []
        for label, mask in (("coding", is_coding), ("intergenic", is_inter)):
            chosen = rng.choice(starts[mask], size=take, replace=False)
            xs += [seq[s:s + window] for s in chosen]
            ys += [label] * len(chosen)
        splits.append((xs, ys))
    return tuple(splits)


def scores(y_true, proba: np.ndarray, classes: np.ndarray) -> dict:
    from sklearn.metrics import accuracy_score, matthews_corrcoef, roc_auc_score

    y_true = np.asarray(y_true)
    predicted = classes[proba.argmax(1)]
    return {"acc": accuracy_score(y_true, predicted), "mcc": matthews_corrcoef(y_true, predicted),
            "auc": roc_auc_score(y_true == classes[1], proba[:, 1])}


def probe(train_x: np.ndarray, train_y, dev_x: np.ndarray, dev_y, test_x: np.ndarray, test_y) -> dict:
    """Logistic regression on features; C chosen on dev from a small grid."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    best = None
    for c in (0.01, 0.1, 1.0, 10.0):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000)).fit(train_x, train_y)
        acc = model.score(dev_x, dev_y)
        if best is None or acc > best[0]:
            best = (acc, c, model)
    result = scores(test_y, best[2].predict_proba(test_x), best[2].classes_)
    result["C"] = best[1]
    return result


def classifier_params(args, sizes: dict, max_len: int) -> dict:
    from seqmamba import MambaEmbedder

    config = MambaEmbedder.load(args.model).model_.config
    return {"d_model": config.d_model, "n_layers": config.n_layers, "d_state": config.d_state,
            "bidirectional": config.bidirectional, "rc_equivariant": config.rc_equivariant,
            "max_len": max_len, "device": args.device, "random_state": args.seed, **sizes["finetune"]}


def fine_tune_pair(args, sizes: dict, train, dev, test) -> dict:
    """The same classifier trained from the pretrained encoder and from scratch, early-stopped on dev."""
    from seqmamba import MambaSequenceClassifier

    params = classifier_params(args, sizes, max(len(s) for s in train[0]))
    # One epoch first, with the dev evaluation and the test prediction, at the pair's very shapes: the first
    # training of a process pays for its start (Triton compiling kernels for these shapes, among others), which
    # would otherwise fall on whichever of the pair runs first and eat into its time budget.
    start = time.perf_counter()
    warm = MambaSequenceClassifier(**{**params, "max_epochs": 1, "max_time": None}).fit(*train, eval_set=dev)
    warm.predict_proba(test[0])
    out = {"warm_up_s": time.perf_counter() - start}
    for name, extra in (("pretrained", {"init": str(args.model), "encoder_lr_scale": sizes["encoder_lr_scale"]}),
                        ("scratch", {})):
        start = time.perf_counter()
        clf = MambaSequenceClassifier(**params, **extra, early_stopping=True).fit(*train, eval_set=dev)
        out[name] = scores(test[1], clf.predict_proba(test[0]), clf.classes_)
        out[name].update(fit_s=time.perf_counter() - start, steps=clf.n_iter_)
        print(f"  fine-tune {name}: {out[name]}", flush=True)
    return out


def ecoli(args, sizes: dict) -> dict:
    import torch

    from seqmamba import MambaEmbedder
    from seqmamba.baselines.kmer import KmerCounter

    train, dev, test = ecoli_task(Path(args.data), sizes["ecoli_window"], sizes["ecoli_per_class"], args.seed)
    out = {"n": [len(s[0]) for s in (train, dev, test)], "window": sizes["ecoli_window"], "probe": {}}
    pretrained = MambaEmbedder.load(args.model, device=args.device)
    untrained = MambaEmbedder.load(args.model, device=args.device)
    torch.manual_seed(args.seed)
    untrained.model_ = type(untrained.model_)(untrained.model_.config).eval()  # same architecture, new weights
    for name, emb in (("pretrained", pretrained), ("untrained", untrained)):
        feats = [emb.transform(s[0]) for s in (train, dev, test)]
        out["probe"][name] = probe(feats[0], train[1], feats[1], dev[1], feats[2], test[1])
        print(f"  probe {name}: {out['probe'][name]}", flush=True)
    kmer = KmerCounter(k=6)
    feats = [kmer.fit_transform(train[0]).toarray(), *(kmer.transform(s[0]).toarray() for s in (dev, test))]
    out["probe"]["6-mer"] = probe(feats[0], train[1], feats[1], dev[1], feats[2], test[1])
    print(f"  probe 6-mer: {out['probe']['6-mer']}", flush=True)
    out["finetune"] = {} if args.no_finetune else fine_tune_pair(args, sizes, train, dev, test)
    return out


def gue_dir(data: Path) -> Path:
    """``DATA/gue`` (a copy for the GPU machine) or ``DATA/dna/gue`` (../shared/data's layout)."""
    return data / "gue" if (data / "gue").is_dir() else data / "dna" / "gue"


def gue(args, sizes: dict) -> dict:
    from seqmamba.datasets.labelled import read_labelled_table

    out = {}
    for task in GUE_TASKS:
        splits = []
        for name in ("train", "dev", "test"):
            X, y = read_labelled_table(gue_dir(Path(args.data)) / task / f"{name}.csv")
            limit = sizes["gue_limit"]
            splits.append((X[:limit], y[:limit]) if limit else (X, y))
        print(f"GUE {task}", flush=True)
        out[task] = fine_tune_pair(args, sizes, *splits)
        out[task]["n"] = [len(s[0]) for s in splits]
    return out


# -- report --------------------------------------------------------------------------------------------


def report(args) -> str:
    import torch

    results = Path(args.results)
    load = lambda name: json.loads((results / f"{name}.json").read_text()) if (results / f"{name}.json").exists() \
        else None  # noqa: E731
    pre, eco, g = load("pretrain"), load("ecoli"), load("gue")
    env = load("env") or {}
    lines = ["# Pretraining results", "",
             f"Device: {env.get('device', '?')} (torch {env.get('torch', torch.__version__)}), commit "
             f"`{env.get('commit', '?')}`. Commands (each stage one device call):", "",
             "    PYTHONPATH=$PWD python3 benchmarks/pretrain_results.py --stages pretrain --data DATA --results R",
             "    PYTHONPATH=$PWD python3 benchmarks/pretrain_results.py --stages ecoli gue report --data DATA "
             "--results R", ""]
    if pre:
        tail = pre["metrics_tail"][-1] if pre["metrics_tail"] else {}
        lines += ["## Pretraining", "", f"`seqmamba {pre['command'].split(' ', 2)[-1]}`", "",
                  f"Wall time {pre['wall_s']:.0f} s; last record of metrics.jsonl: `{json.dumps(tail)}`.", "",
                  f"Masked-nucleotide accuracy on {pre['masked_positions']:,} masked positions of held-out windows "
                  "(the last share of every record, never trained on), against k-mer floors counted on the "
                  "training regions and scored at the same positions (with the true neighbours, which the model "
                  "does not always see):", "",
                  "| predictor | masked accuracy |", "|---|---:|",
                  f"| pretrained encoder | {pre['model_acc']:.4f} |"]
        for key in sorted(k for k in pre if k.endswith("_acc") and k != "model_acc"):
            lines.append(f"| {key[:-4].replace('_', ' ')} | {pre[key]:.4f} |")
        lines.append("")
    if eco:
        lines += ["## E. coli: coding vs intergenic", "",
                  f"{eco['window']}-bp windows inside one CDS (coding) or touching no annotated feature "
                  f"(intergenic), balanced; train / dev / test = {' / '.join(f'{n:,}' for n in eco['n'])} "
                  "windows from genome positions 0-70 % / 70-80 % / 80-100 % (the test part is the region "
                  "pretraining held out).", "",
                  "| features / model | test acc | test MCC | test ROC AUC |", "|---|---:|---:|---:|"]
        for name, r in eco["probe"].items():
            lines.append(f"| frozen {name} + logistic regression | {r['acc']:.3f} | {r['mcc']:.3f} | {r['auc']:.3f} |")
        for name, r in ((k, v) for k, v in eco["finetune"].items() if isinstance(v, dict)):
            lines.append(f"| fine-tuned from {name} ({r['fit_s']:.0f} s, {r['steps']} steps) | {r['acc']:.3f} | "
                         f"{r['mcc']:.3f} | {r['auc']:.3f} |")
        lines.append("")
    if g:
        lines += ["## GUE: fine-tuned from the pretrained encoder vs from scratch", "",
                  "Same architecture and schedule, early stopping on dev, test MCC.", "",
                  "| task | train / dev / test | from pretrained MCC | from scratch MCC |", "|---|---|---:|---:|"]
        for task, r in ((t, r) for t, r in g.items() if t in GUE_TASKS):
            lines.append(f"| {task} | {' / '.join(f'{n:,}' for n in r['n'])} | {r['pretrained']['mcc']:.3f} | "
                         f"{r['scratch']['mcc']:.3f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stages", nargs="+", default=["all"],
                        choices=["all", "pretrain", "mlm", "ecoli", "gue", "report"])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"),
                        help="Folder with genomes/ and gue/ (default: ../shared/data, whose GUE is dna/gue).")
    parser.add_argument("--results", default=".devdata/pretrain_results")
    parser.add_argument("--model", default=None, help="Pretrained model directory [RESULTS/model].")
    parser.add_argument("--out", default=None, help="Markdown report path (stage report).")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--cpu-sizes", action="store_true", help="The CPU-sized preset (a 2-core machine).")
    parser.add_argument("--no-finetune", action="store_true", help="E. coli: the frozen probes only.")
    parser.add_argument("--pretrain-time", type=float, help="Seconds of pretraining (overrides the preset).")
    parser.add_argument("--finetune-time", type=float, help="Seconds per fine-tuning run (overrides the preset).")
    args = parser.parse_args()
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    args.model = args.model or str(results / "model")
    sizes = json.loads(json.dumps(SMOKE if args.smoke else CPU if args.cpu_sizes else FULL))  # a copy to override
    if args.pretrain_time:
        sizes["pretrain"]["max_time"] = args.pretrain_time
    if args.finetune_time:
        sizes["finetune"]["max_time"] = args.finetune_time
    stages = ["pretrain", "ecoli", "gue", "report"] if "all" in args.stages else args.stages

    import torch

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else \
        f"CPU ({platform.processor() or platform.machine()})"
    (results / "env.json").write_text(json.dumps({"device": device, "torch": torch.__version__, "commit": commit}))
    runners = {"pretrain": pretrain, "mlm": masked_accuracy, "ecoli": ecoli, "gue": gue}
    for stage in stages:
        if stage == "report":
            text = report(args)
            if args.out:
                Path(args.out).write_text(text + "\n")
            print(text)
            continue
        start = time.perf_counter()
        print(f"== {stage}", flush=True)
        result = runners[stage](args, sizes)
        if stage == "mlm":  # a re-score of the held-out accuracy keeps the pretraining record
            previous = json.loads((results / "pretrain.json").read_text())
            result = {**previous, **result}
            stage = "pretrain"
        result["stage_s"] = time.perf_counter() - start
        (results / f"{stage}.json").write_text(json.dumps(result, indent=1, default=float))
        print(f"== {stage} done in {result['stage_s']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
