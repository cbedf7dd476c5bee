#!/usr/bin/python3
"""Checks that xgrad's exports under PyTorch names load into the matching PyTorch modules with
load_state_dict(strict=True) and give xgrad's outputs there.

  XGRAD_SAFETENSORS_EXPORT=DIR build/tests/test_safetensors --gtest_filter=SafetensorsExport.*
  /usr/bin/python3 tests/data/safetensors/check_export.py DIR

DIR then holds <model>_<dtype>.safetensors written by xgrad and <model>_<dtype>.json with the
inputs and xgrad's outputs. Prints the largest difference per output; exits 1 if any exceeds
1e-12 (double) or 1e-5 (float32).
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_files import MODELS, read_safetensors  # noqa: E402


def main(directory):
    torch.set_num_threads(1)
    worst_ok = True
    for file in sorted(os.listdir(directory)):
        if not file.endswith(".safetensors"):
            continue
        base = file[:-len(".safetensors")]
        name, dtype = base.split("_")
        dt = torch.float32 if dtype == "f32" else torch.float64
        state = read_safetensors(os.path.join(directory, file))
        model = MODELS[name]().to(dt)
        model.load_state_dict(state, strict=True)  # raises on any missing or unexpected key
        with open(os.path.join(directory, base + ".json")) as f:
            ref = json.load(f)
        x = ref["input"]
        x = torch.tensor(x["data"], dtype=torch.long if name == "embedding" else torch.float64).reshape(x["shape"])
        with torch.no_grad():
            out = model(x if name == "embedding" else x.to(dt))
        tol = 1e-5 if dt == torch.float32 else 1e-12
        for key, value in out.items():
            want = torch.tensor(ref[key]["data"], dtype=torch.float64).reshape(ref[key]["shape"])
            diff = (value.double() - want).abs().max().item()
            ok = diff <= tol
            worst_ok = worst_ok and ok
            print(f"{base}: strict load of {len(state)} tensors, {key} {tuple(value.shape)} "
                  f"max |PyTorch - xgrad| = {diff:.3g} {'ok' if ok else 'TOO LARGE'}")
    return 0 if worst_ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
