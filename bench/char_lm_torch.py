#!/usr/bin/python3
"""PyTorch counterpart of `char_lm`'s quality bar: held-out nats/char of a character LSTM.

The bar (README.md): one LSTM layer of 256 on one-hot input, a linear output layer, B=32, T=64,
Adam 2e-3, gradient clipping at global norm 5, 2,000 steps, fixed seed; PyTorch's default
initialisation (every LSTM weight and both biases U(-1/sqrt(H), 1/sqrt(H)), Linear
U(-1/sqrt(H), 1/sqrt(H))).

Data, as examples/common/corpus.cpp reads it:
  - the corpus files: a FILE itself; a DIR (default /usr/share/games/fortunes) walked
    recursively, keeping regular files that are not symlinks (Debian's X.u8 -> X duplicates),
    not *.dat (strfile indexes) and not hidden, sorted by '/'-separated relative path;
  - their bytes concatenated and decoded as strict UTF-8; characters are code points; the
    vocabulary is every code point of the whole text, sorted;
  - the last llround(n * 0.1) characters are held out (xgrad::data::split_sizes, as char_lm
    splits).
Training: truncated BPTT in B parallel streams, as xgrad::data::StreamBatcher with drop_last:
the training text of N characters is cut into B streams of S = N // B characters (stream b is
[b*S, (b+1)*S)); segment k holds stream positions [k*T, k*T + T) as inputs and the positions one
later as targets, (S - 1) // T segments per epoch; step s uses segment s mod that; the hidden
state is carried (detached) from segment to segment and reset to zero when the streams start
over.
Evaluation: the held-out text as one stream from a zero state, every held-out character
predicted from the characters before it (the first from the last training character), in
chunks of 1,024 with the state carried; mean cross-entropy in nats/char, and bits/char.

Quick run: /usr/bin/python3 bench/char_lm_torch.py --steps 50 --eval-chars 20000
"""
import argparse
import math
import os
import re
import subprocess
import sys
import time


def corpus_files(path):
    """The same selection as corpus_files in examples/common/corpus.cpp."""
    if not os.path.exists(path):
        sys.exit(f"corpus: '{path}' does not exist")
    if not os.path.isdir(path):
        return [path]
    found = []
    for root, dirs, files in os.walk(path, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            full = os.path.join(root, name)
            if name.startswith(".") or name.endswith(".dat") or os.path.islink(full) or not os.path.isfile(full):
                continue
            found.append((os.path.relpath(full, path).replace(os.sep, "/"), full))
    if not found:
        sys.exit(f"corpus: no text files in '{path}'")
    return [full for _, full in sorted(found)]


def read_corpus(path):
    data = b"".join(open(f, "rb").read() for f in corpus_files(path))
    if not data:
        sys.exit(f"corpus: no text in '{path}' (empty)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        sys.exit(f"{path}: invalid UTF-8 at byte offset {e.start}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="/usr/share/games/fortunes", help="text FILE or DIR")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--clip", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads; on a loaded 2-core machine 2 threads ran 15x slower than 1 (OpenMP contention)")
    ap.add_argument("--eval-chars", type=int, default=0,
                    help="evaluate on only the first N held-out characters (quick runs); 0: all")
    ap.add_argument("--xgrad", metavar="BIN", help="also run this char_lm binary with the same settings and print both")
    args = ap.parse_args()

    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.time()
    text = read_corpus(args.data)
    vocab = sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    ids = torch.tensor([index[c] for c in text], dtype=torch.long)
    n = len(ids)
    x = n * 0.1  # data::split_sizes(n, 0.1, 0).train: n - llround(n * 0.1), llround rounding halves away from zero
    split = n - (int(x) + (1 if x - int(x) >= 0.5 else 0))
    V, B, T = len(vocab), args.batch, args.seq_len
    print(f"data: {n} characters ({split} train, {n - split} held out), {V} symbols, "
          f"{len(corpus_files(args.data))} files ({time.time() - t0:.1f} s)", flush=True)

    train = ids[:split]
    S = len(train) // B
    segments = (S - 1) // T
    if segments < 1:
        sys.exit(f"training text of {len(train)} characters too short for {B} streams of {T}")
    xs = torch.stack([train[b * S : b * S + S - 1] for b in range(B)], 1)      # (S - 1, B)
    ys = torch.stack([train[b * S + 1 : b * S + S] for b in range(B)], 1)      # (S - 1, B)

    lstm, out = nn.LSTM(V, args.hidden), nn.Linear(args.hidden, V)
    params = list(lstm.parameters()) + list(out.parameters())
    opt = torch.optim.Adam(params, lr=args.lr)

    state, t_train, running = None, time.time(), []
    for step in range(args.steps):
        k = step % segments
        if k == 0:
            state = None  # streams wrapped around: start again from a zero state
        x = F.one_hot(xs[k * T : k * T + T], V).float()  # (T, B, V)
        y = ys[k * T : k * T + T]                         # (T, B)
        h, state = lstm(x, state)
        state = tuple(s.detach() for s in state)
        loss = F.cross_entropy(out(h).reshape(T * B, V), y.reshape(T * B))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, args.clip)
        opt.step()
        running.append(loss.item())
        if (step + 1) % 50 == 0 or step + 1 == args.steps:
            el = time.time() - t_train
            print(f"\rstep {step + 1}/{args.steps}  loss {sum(running[-50:]) / len(running[-50:]):.4f}  "
                  f"{(step + 1) * B * T / el:.0f} tok/s  elapsed {el:.0f} s  "
                  f"left {(args.steps - step - 1) * el / (step + 1):.0f} s", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    train_time = time.time() - t_train

    t_eval = time.time()
    end = n if args.eval_chars <= 0 else min(n, split + args.eval_chars)
    total, count, state = 0.0, 0, None
    with torch.no_grad():
        for s in range(split, end, 1024):
            e = min(s + 1024, end)
            x = F.one_hot(ids[s - 1 : e - 1], V).float().unsqueeze(1)  # (t, 1, V)
            h, state = lstm(x, state)
            total += F.cross_entropy(out(h[:, 0]), ids[s:e], reduction="sum").item()
            count += e - s
    nats = total / count
    print(f"pytorch {torch.__version__}: {args.steps} steps in {train_time:.1f} s "
          f"({args.steps * B * T / train_time:.0f} tok/s, {args.threads} threads); "
          f"evaluated {count} held-out characters in {time.time() - t_eval:.1f} s")
    if args.xgrad:
        cmd = [args.xgrad, "--data", args.data, "--cell", "lstm", "--hidden", str(args.hidden), "--layers", "1",
               "--embed", "0", "--batch", str(B), "--seq-len", str(T), "--steps", str(args.steps),
               "--lr", str(args.lr), "--clip", str(args.clip), "--seed", str(args.seed), "--threads", str(args.threads)]
        t = time.time()
        res = subprocess.run(cmd, capture_output=True, text=True)
        last = res.stdout.strip().split("\n")[-1] if res.stdout.strip() else ""
        m = re.search(r"held-out: ([0-9.]+) nats/char", last)
        if res.returncode != 0 or not m:
            sys.exit(f"{' '.join(cmd)} failed (status {res.returncode}):\n{res.stderr[-2000:]}")
        xn = float(m.group(1))
        print(f"xgrad: {xn:.4f} nats/char in {time.time() - t:.1f} s; pytorch {nats:.4f}; "
              f"xgrad/pytorch {xn / nats:.4f} (bar: <= 1.01)")
    print(f"held-out: {nats:.4f} nats/char, {nats / math.log(2):.4f} bits/char")


if __name__ == "__main__":
    main()
