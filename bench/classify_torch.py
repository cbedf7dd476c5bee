#!/usr/bin/python3
"""PyTorch counterpart of `classify`'s quality bar: which of eight languages a word is from.

Model and budget of the bar (README.md): character embedding 32, one LSTM layer of 128, the
final state (at each word's own length) -> linear -> 8 classes, softmax cross-entropy, Adam
2e-3, batch 64, 5 epochs; reports held-out accuracy on the test split and a confusion matrix.

Data: exactly the split of examples/common/wordlists.cpp. Either read it from a file written
by the C++ side (--split FILE: lines "split<TAB>language<TAB>word", UTF-8), or rebuild it here
with the same rules, replicated line for line:
  - the eight Debian lists in /usr/share/dict, Swedish ISO-8859-1, the others UTF-8 (strict);
  - lines split on '\n', one trailing '\r' dropped, empty lines and words with ' or U+2019
    dropped, lower-cased with the same one-to-one Latin mapping as to_lower in utf8.cpp,
    duplicates removed, sorted by code points;
  - words in more than one language dropped; per language (label order) a std::mt19937_64
    seeded with seed + label draws, by partial Fisher-Yates with j = i + rng() % (n - i),
    10,000 train, 1,000 validation and 2,000 test words.
--check-split FILE compares the rebuilt split with a dumped one and exits.

Quick run: /usr/bin/python3 bench/classify_torch.py --steps 50 --threads 1
"""
import argparse
import math
import os
import re
import subprocess
import sys
import time

WORD_LISTS = [  # (language, file, encoding), label = index; as kWordLists in wordlists.hpp
    ("english", "american-english", "utf-8"),
    ("german", "ngerman", "utf-8"),
    ("french", "french", "utf-8"),
    ("spanish", "spanish", "utf-8"),
    ("italian", "italian", "utf-8"),
    ("portuguese", "portuguese", "utf-8"),
    ("dutch", "dutch", "utf-8"),
    ("swedish", "swedish", "latin-1"),
]
SPLIT_SEED = 20240607  # WordSplitOptions::seed
SIZES = (10000, 1000, 2000)  # train, validation, test per language


class MT19937_64:
    """std::mt19937_64, bit for bit (seeding, twist and tempering as in the C++ standard)."""
    N, M, MASK = 312, 156, (1 << 64) - 1

    def __init__(self, seed):
        mt = [seed & self.MASK]
        for i in range(1, self.N):
            mt.append((6364136223846793005 * (mt[-1] ^ (mt[-1] >> 62)) + i) & self.MASK)
        self.mt, self.i = mt, self.N

    def __call__(self):
        if self.i >= self.N:
            mt, upper, lower = self.mt, 0xFFFFFFFF80000000, 0x7FFFFFFF
            for k in range(self.N):
                y = (mt[k] & upper) | (mt[(k + 1) % self.N] & lower)
                mt[k] = mt[(k + self.M) % self.N] ^ (y >> 1) ^ (0xB5026F5AA96619E9 if y & 1 else 0)
            self.i = 0
        x = self.mt[self.i]
        self.i += 1
        x ^= (x >> 29) & 0x5555555555555555
        x ^= (x << 17) & 0x71D67FFFEDA60000
        x ^= (x << 37) & 0xFFF7EEE000000000
        x ^= x >> 43
        return x & self.MASK


def lower_table():
    """to_lower of examples/common/utf8.cpp as a str.translate table (one code point to one)."""
    t = {}
    for c in range(ord("A"), ord("Z") + 1):
        t[c] = c + 0x20
    for c in range(0xC0, 0xDF):
        if c != 0xD7:
            t[c] = c + 0x20
    for c in range(0x100, 0x180):
        if c == 0x130:
            t[c] = ord("i")
        elif c in (0x131, 0x138, 0x149, 0x17F):
            continue
        elif c == 0x178:
            t[c] = 0xFF
        elif 0x139 <= c <= 0x148 or 0x179 <= c <= 0x17E:
            if c % 2 == 1:
                t[c] = c + 1
        elif c % 2 == 0:
            t[c] = c + 1
    t[0x1E9E] = 0xDF
    return t


def read_word_list(path, encoding, table):
    with open(path, "rb") as f:
        data = f.read()
    if not data:
        sys.exit(f"word list: '{path}' is empty")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        sys.exit(f"word list '{path}': invalid UTF-8 at byte offset {e.start}")
    words = set()
    for w in text.split("\n"):
        if w.endswith("\r"):
            w = w[:-1]
        if not w or "'" in w or "\u2019" in w:
            continue
        words.add(w.translate(table))
    return sorted(words)


def build_split(dict_dir, seed):
    table = lower_table()
    lists = [read_word_list(os.path.join(dict_dir, f), enc, table) for _, f, enc in WORD_LISTS]
    count = {}
    for lst in lists:
        for w in lst:
            count[w] = count.get(w, 0) + 1
    need = sum(SIZES)
    split = {"train": [], "validation": [], "test": []}
    for label, lst in enumerate(lists):
        own = [w for w in lst if count[w] == 1]  # already sorted
        if len(own) < need:
            sys.exit(f"word split: {WORD_LISTS[label][0]} has {len(own)} words of its own, {need} needed")
        rng = MT19937_64(seed + label)
        n = len(own)
        for i in range(min(need, n)):
            j = i + rng() % (n - i)
            own[i], own[j] = own[j], own[i]
        for i in range(need):
            part = "train" if i < SIZES[0] else "validation" if i < SIZES[0] + SIZES[1] else "test"
            split[part].append((own[i], label))
    return split, [lang for lang, _, _ in WORD_LISTS]


def read_split(path):
    split = {"train": [], "validation": [], "test": []}
    languages = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            parts = line.split("\t", 2)
            if len(parts) != 3 or parts[0] not in split:
                sys.exit(f"word split: '{path}' line {n}: expected split<TAB>language<TAB>word")
            if parts[1] not in languages:
                languages.append(parts[1])
            split[parts[0]].append((parts[2], languages.index(parts[1])))
    return split, languages


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", help="read the split dumped by the C++ side instead of rebuilding it")
    ap.add_argument("--check-split", metavar="FILE", help="compare the rebuilt split with FILE and exit")
    ap.add_argument("--dict", default="/usr/share/dict")
    ap.add_argument("--split-seed", type=int, default=SPLIT_SEED)
    ap.add_argument("--seed", type=int, default=1, help="initialisation and batch order")
    ap.add_argument("--embed", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--steps", type=int, default=0, help="stop after this many steps (quick runs); 0: all")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads; on a loaded 2-core machine 2 threads ran 15x slower than 1 (OpenMP contention)")
    ap.add_argument("--xgrad", metavar="BIN", help="also run this classify binary with the same settings and print both")
    args = ap.parse_args()

    t0 = time.time()
    if args.check_split:
        mine, langs = build_split(args.dict, args.split_seed)
        theirs, their_langs = read_split(args.check_split)
        same = langs == their_langs and all(
            [(w, langs[l]) for w, l in mine[k]] == [(w, their_langs[l]) for w, l in theirs[k]] for k in mine)
        print(f"split rebuilt in Python {'matches' if same else 'DIFFERS FROM'} {args.check_split}")
        sys.exit(0 if same else 1)
    if args.split:
        split, languages = read_split(args.split)
    else:
        split, languages = build_split(args.dict, args.split_seed)
    print(f"data: {len(split['train'])} train, {len(split['validation'])} validation, "
          f"{len(split['test'])} test words, {len(languages)} languages ({time.time() - t0:.1f} s)", flush=True)

    import torch
    import torch.nn as nn
    from torch.nn.utils.rnn import pack_padded_sequence

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    chars = sorted({c for part in split.values() for w, _ in part for c in w})
    index = {c: i + 1 for i, c in enumerate(chars)}  # 0: padding

    def encode(words):
        # (T, m) ids, time-major, padded with 0; lengths (m,)
        lengths = torch.tensor([len(w) for w, _ in words])
        ids = torch.zeros(int(lengths.max()), len(words), dtype=torch.long)
        for k, (w, _) in enumerate(words):
            ids[: len(w), k] = torch.tensor([index[c] for c in w])
        return ids, lengths, torch.tensor([l for _, l in words])

    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(len(chars) + 1, args.embed, padding_idx=0)
            self.lstm = nn.LSTM(args.embed, args.hidden)
            self.out = nn.Linear(args.hidden, len(languages))

        def forward(self, ids, lengths):
            packed = pack_padded_sequence(self.emb(ids), lengths, enforce_sorted=False)
            _, (h, _) = self.lstm(packed)  # h: (1, m, hidden), the state at each word's end
            return self.out(h[-1])

    model = Classifier()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()

    def evaluate(words, confusion=None):
        model.eval()
        correct = 0
        with torch.no_grad():
            for s in range(0, len(words), 1024):
                ids, lengths, labels = encode(words[s : s + 1024])
                pred = model(ids, lengths).argmax(1)
                correct += int((pred == labels).sum())
                if confusion is not None:
                    for t, p in zip(labels.tolist(), pred.tolist()):
                        confusion[t][p] += 1
        model.train()
        return correct / len(words)

    train = split["train"]
    steps_per_epoch = math.ceil(len(train) / args.batch)
    total = steps_per_epoch * args.epochs if args.steps <= 0 else min(args.steps, steps_per_epoch * args.epochs)
    gen = torch.Generator().manual_seed(args.seed)
    step, t_train = 0, time.time()
    for epoch in range(args.epochs):
        order = torch.randperm(len(train), generator=gen).tolist()
        running, seen = 0.0, 0
        for s in range(0, len(train), args.batch):
            if step >= total:
                break
            ids, lengths, labels = encode([train[k] for k in order[s : s + args.batch]])
            loss = loss_fn(model(ids, lengths), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            running += loss.item()
            seen += 1
            if step % 100 == 0 or step == total:
                el = time.time() - t_train
                print(f"\rstep {step}/{total}  loss {running / seen:.4f}  {step / el:.1f} steps/s  "
                      f"elapsed {el:.0f} s  left {(total - step) * el / step:.0f} s", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        print(f"epoch {epoch + 1}: train loss {running / max(seen, 1):.4f}, "
              f"validation accuracy {evaluate(split['validation']):.4f}", flush=True)
        if step >= total:
            break
    train_time = time.time() - t_train

    confusion = [[0] * len(languages) for _ in languages]
    acc = evaluate(split["test"], confusion)
    width = max(len(l) for l in languages)
    print("confusion matrix (rows: true language, columns: predicted):")
    print(" " * (width + 1) + " ".join(f"{l[:5]:>5}" for l in languages))
    for l, row in zip(languages, confusion):
        print(f"{l:>{width}} " + " ".join(f"{c:>5}" for c in row))
    print(f"pytorch {torch.__version__}: {step} steps in {train_time:.1f} s ({step / train_time:.1f} steps/s), "
          f"{args.threads} threads")
    if args.xgrad:
        cmd = [args.xgrad, "--cell", "lstm", "--embed", str(args.embed), "--hidden", str(args.hidden),
               "--batch", str(args.batch), "--epochs", str(args.epochs), "--lr", str(args.lr),
               "--seed", str(args.seed), "--threads", str(args.threads)]
        t = time.time()
        out = subprocess.run(cmd, capture_output=True, text=True)
        m = re.search(r"test accuracy: ([0-9.]+)", out.stdout.strip().split("\n")[-1] if out.stdout else "")
        if out.returncode != 0 or not m:
            sys.exit(f"{' '.join(cmd)} failed (status {out.returncode}):\n{out.stderr[-2000:]}")
        xa = float(m.group(1))
        print(f"xgrad: test accuracy {xa:.4f} in {time.time() - t:.1f} s; pytorch {acc:.4f}; "
              f"difference {100 * (xa - acc):+.2f} points (bar: >= -1)")
    print(f"test accuracy: {acc:.4f}")


if __name__ == "__main__":
    main()
