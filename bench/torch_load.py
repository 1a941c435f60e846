"""
Loads a policy exported by `virl export CHECKPOINT --format safetensors` into the PyTorch model of
bench/torch_policy.py (the same forward pass as src/plugins/policy/tfjs/model.ts), at the widths
its metadata stores. The tfjs policy's dense weights are [in, out] (y = x @ W + b); nn.Linear
holds W transposed, so each is transposed on the way in.

  python3 bench/torch_load.py MODEL.safetensors                 # load, print the model's shapes
  python3 bench/torch_load.py MODEL.safetensors --check PROBE.json

--check compares the PyTorch model's probabilities of each answer part (action, current
instruction, current observation) and its value with the tfjs policy's on the inputs of a probe
(src/plugins/policy/tfjs/export.ts writes one; test/app/export.test.ts uses this) and exits 1
past --tolerance. Reads the file with its own parser; when the `safetensors` package is present,
also with safetensors.torch.load_file, and checks that the two agree.
"""
import argparse, json, math, os, struct, sys
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_policy import Policy  # noqa: E402

# tfjs parameter -> (PyTorch parameter, transpose?)
NAMES = {
    "word_embedding": ("words.weight", False),
    "word_bias": ("word_bias", False),
    "sentence_position": ("sentence_position", False),
    "context_w1": ("context1.weight", True),
    "context_b1": ("context1.bias", False),
    "context_w2": ("context2.weight", True),
    "context_b2": ("context2.bias", False),
    # the tfjs model computes query @ K^T, which is nn.Linear with weight K
    "attention_keys": ("keys.weight", False),
    "patch_w": ("patch.weight", True),
    "patch_b": ("patch.bias", False),
    "image_w": ("image.weight", True),
    "image_b": ("image.bias", False),
    "joint_w": ("joint.weight", True),
    "joint_b": ("joint.bias", False),
    "action_query": ("action_query.weight", True),
    "action_prior": ("action_prior.weight", True),
    "observation_query": ("observation_query.weight", True),
    "observation_prior": ("observation_prior.weight", True),
    "value_w1": ("value1.weight", True),
    "value_b1": ("value1.bias", False),
    "value_w2": ("value2.weight", True),
    "value_b2": ("value2.bias", False),
}


def read_safetensors(path):
    """(tensors by name, metadata) of a float32 safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    metadata = header.pop("__metadata__", {})
    data = raw[8 + n :]
    tensors = {}
    for name, t in header.items():
        if t["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name} is {t['dtype']}, expected F32")
        begin, end = t["data_offsets"]
        tensors[name] = torch.frombuffer(bytearray(data[begin:end]), dtype=torch.float32).reshape(t["shape"])
    return tensors, metadata


def load(path):
    """The PyTorch policy holding the exported weights, and the file's metadata."""
    tensors, metadata = read_safetensors(path)
    try:
        from safetensors.torch import load_file
    except ImportError:
        load_file = None
    if load_file is not None:
        official = load_file(path)
        if set(official) != set(tensors) or any(not torch.equal(official[k], tensors[k]) for k in tensors):
            raise ValueError(f"{path}: safetensors.torch.load_file reads other tensors than this parser")
    if metadata.get("policy") != "tfjs-vl":
        raise ValueError(f"{path}: holds a {metadata.get('policy')!r} policy; this loader knows tfjs-vl")
    model = json.loads(metadata["policy_config"])["model"]
    shape = model["shape"]
    policy = Policy(
        vocab=shape["vocab"], sentences=shape["maxSentences"], actions=shape["maxActions"], observations=shape["maxObservations"],
        max_count=shape["maxCount"], side=shape["imageSide"], embedding=model["embedding"], hidden=model["hidden"],
        patch=model["patch"], patch_features=model["patchFeatures"],
    )
    state = {}
    for name, tensor in tensors.items():
        if name not in NAMES:
            raise ValueError(f"{path}: unknown parameter {name}")
        target, transpose = NAMES[name]
        state[target] = tensor.t().contiguous() if transpose else tensor
    policy.load_state_dict(state, strict=True)
    return policy.eval(), metadata


def batch(probe, policy):
    """The probe's inputs as the model's tensors: word ids, bag offsets and 1/sqrt(count) weights, counts, image, masks."""
    ids, offsets, scales, counts, images, masks = [], [], [], [], [], ([], [], [])
    for x in probe["inputs"]:
        o = x["offsets"]
        for k in range(len(o) - 1):
            offsets.append(len(ids))
            words = x["words"][o[k] : o[k + 1]]
            ids.extend(words)
            scales.extend([1 / math.sqrt(len(words))] * len(words) if words else [])
        counts.append(x["counts"])
        images.append([v / 255 - 0.5 for v in x["image"]])
        for m, (n, size) in zip(masks, ((x["sentences"], policy.S), (x["actions"], policy.C), (x["observations"], policy.O))):
            m.append([1.0] * min(n, size) + [0.0] * (size - min(n, size)))
    B = len(probe["inputs"])
    return (
        torch.tensor(ids, dtype=torch.long),
        torch.tensor(offsets, dtype=torch.long),
        torch.tensor(counts, dtype=torch.float32),
        torch.tensor(images, dtype=torch.float32).reshape(B, policy.side, policy.side, 3),
        tuple(torch.tensor(m, dtype=torch.float32) for m in masks),
        torch.tensor(scales, dtype=torch.float32),
    )


def check(policy, probe):
    """The largest difference from the tfjs policy's probabilities and values."""
    ids, offsets, counts, image, masks, scales = batch(probe, policy)
    with torch.no_grad():
        a, s, o, v = policy(ids, offsets, counts, image, masks, scales)
    worst = {"action": 0.0, "instruction": 0.0, "observation": 0.0, "value": 0.0}
    for i, (x, e) in enumerate(zip(probe["inputs"], probe["expected"])):
        for part, logits, n in (("action", a, x["actions"]), ("instruction", s, x["sentences"]), ("observation", o, x["observations"])):
            if n == 0:
                continue
            p = logits[i, :n].softmax(0)
            worst[part] = max(worst[part], (p - torch.tensor(e[part])).abs().max().item())
        worst["value"] = max(worst["value"], abs(v[i].item() - e["value"]))
    return worst


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--check", help="probe JSON: inputs and the tfjs policy's probabilities")
    ap.add_argument("--tolerance", type=float, default=1e-4)
    a = ap.parse_args()
    policy, metadata = load(a.model)
    if a.check is None:
        print(json.dumps({"policy": metadata.get("policy"), "phase": metadata.get("phase"), "parameters": {k: list(p.shape) for k, p in policy.state_dict().items()}}))
        return
    with open(a.check) as f:
        probe = json.load(f)
    worst = check(policy, probe)
    ok = all(d <= a.tolerance for d in worst.values())
    print(json.dumps({"inputs": len(probe["inputs"]), "max_abs_difference": worst, "tolerance": a.tolerance, "ok": ok}))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
