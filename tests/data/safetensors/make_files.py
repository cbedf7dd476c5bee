#!/usr/bin/python3
"""Makes the PyTorch reference files of tests/test_safetensors.cpp (run once; the files are
committed, the tests need no PyTorch):

  <model>_<dtype>.safetensors   a seeded PyTorch model's state_dict (F64, F32, F16 or BF16)
  <model>_<dtype>.json          fixed inputs and PyTorch's outputs for those weights, in double
                                (or float32 for F32 models), flattened with their shapes

Models (time-major sequences, batch_first=False, zero initial state):
  linear      nn.Linear(4, 3)                                  x (5, 4) -> y (5, 3)
  lstm        .lstm nn.LSTM(3, 4, num_layers=2, bidirectional) and .fc nn.Linear(8, 2)
              x (5, 2, 3) -> y = fc(output) (5, 2, 2), h_n, c_n (4, 2, 4)
  gru         nn.GRU(3, 4, num_layers=2) itself                 x (5, 2, 3) -> output, h_n
  rnn         .rnn nn.RNN(3, 4, bidirectional=True)            x (5, 2, 3) -> output, h_n
  embedding   nn.Embedding(10, 3)                              ids (6) -> y (6, 3)
F16 and BF16 files hold the weights rounded to that type; the outputs are computed in double
from the rounded weights. Written with struct + json (Debian has no python3-safetensors).

  /usr/bin/python3 tests/data/safetensors/make_files.py   (Debian's python3-torch)
"""
import json
import os
import struct

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


def write_safetensors(path, tensors):
    """tensors: name -> tensor, written in order, the data section contiguous."""
    header, chunks, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        raw = t.view(torch.uint8).numpy().tobytes() if t.dtype in (torch.float16, torch.bfloat16) \
            else t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def read_safetensors(path):
    """name -> tensor (F64, F32, F16, BF16), for check_export.py."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base, out = 8 + n, {}
    kinds = {v: k for k, v in DTYPES.items()}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        raw = bytearray(data[base + b:base + end])
        dt = kinds[e["dtype"]]
        out[name] = torch.frombuffer(raw, dtype=dt).reshape(e["shape"]).clone() if raw else \
            torch.zeros(e["shape"], dtype=dt)
    return out


def flat(t):
    return {"shape": list(t.shape), "data": t.detach().double().flatten().tolist()}


class LSTMModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True)
        self.fc = torch.nn.Linear(8, 2)

    def forward(self, x):
        out, (h, c) = self.lstm(x)
        return {"y": self.fc(out), "h_n": h, "c_n": c}


class RNNModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = torch.nn.RNN(3, 4, bidirectional=True)

    def forward(self, x):
        out, h = self.rnn(x)
        return {"y": out, "h_n": h}


class GRUModel(torch.nn.GRU):
    def __init__(self):
        super().__init__(3, 4, num_layers=2)

    def forward(self, x):
        out, h = super().forward(x)
        return {"y": out, "h_n": h}


class LinearModel(torch.nn.Linear):
    def __init__(self):
        super().__init__(4, 3)

    def forward(self, x):
        return {"y": super().forward(x)}


class EmbeddingModel(torch.nn.Embedding):
    def __init__(self):
        super().__init__(10, 3)

    def forward(self, ids):
        return {"y": super().forward(ids)}


MODELS = {"linear": LinearModel, "lstm": LSTMModel, "gru": GRUModel, "rnn": RNNModel, "embedding": EmbeddingModel}


def inputs(name, gen):
    if name == "linear":
        return torch.randn(5, 4, generator=gen, dtype=torch.float64)
    if name == "embedding":
        return torch.tensor([3, 0, 9, 3, 7, 1])
    return torch.randn(5, 2, 3, generator=gen, dtype=torch.float64)


def run(model, x, dtype):
    model = model.to(dtype)
    with torch.no_grad():
        out = model(x if x.dtype == torch.long else x.to(dtype))
    return {k: flat(v) for k, v in out.items()}


def make(name, file_dtype, seed):
    torch.manual_seed(seed)
    model = MODELS[name]().double()
    x = inputs(name, torch.Generator().manual_seed(seed + 100))
    # The file's weights, and the model with exactly those weights for the outputs.
    state = {k: v.to(file_dtype) for k, v in model.state_dict().items()}
    model.load_state_dict({k: v.double() for k, v in state.items()})
    out_dtype = torch.float32 if file_dtype == torch.float32 else torch.float64
    base = os.path.join(HERE, f"{name}_{DTYPES[file_dtype].lower()}")
    write_safetensors(base + ".safetensors", state)
    record = {"input": flat(x) if x.dtype != torch.long else {"shape": list(x.shape), "data": x.tolist()}}
    record.update(run(model, x, out_dtype))
    with open(base + ".json", "w") as f:
        json.dump(record, f)
    print(base + ".safetensors:", ", ".join(f"{k} {tuple(v.shape)}" for k, v in state.items()))


if __name__ == "__main__":
    torch.set_num_threads(1)
    make("linear", torch.float64, 1)
    make("linear", torch.float32, 1)
    make("lstm", torch.float64, 2)
    make("lstm", torch.float32, 2)
    make("lstm", torch.float16, 2)
    make("gru", torch.float64, 3)
    make("gru", torch.bfloat16, 3)
    make("rnn", torch.float64, 4)
    make("embedding", torch.float64, 5)
