"""
The small vision-language policy of src/plugins/policy/tfjs/model.ts written in PyTorch, for
`npm run bench:gpu`: the same parameters (shapes as parameterSpecs), the same forward pass (bags of
hashed words, sentence attention, 8x8 patch encoder with mean+max pooling, joint state, candidate
scoring, value head), a cross-entropy step on all three answer parts plus a value loss, and Adam.
Inputs are random with the shapes the tfjs policy sees. Prints one JSON line per batch size:
{"batch": B, "train_samples_per_s": ..., "act_samples_per_s": ...}.

  python3 bench/torch_policy.py [--batches 32,128,512] [--device cuda|cpu] [--tf32]
"""
import argparse, json, math, time
import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB, S, C, O, CTX, MAXCOUNT, SIDE = 4096, 24, 12, 28, 4, 24, 48
D, H, PATCH, PF = 96, 192, 8, 48
SLOTS = S + C + O + CTX
WORDS_PER_SLOT = 12


class Policy(nn.Module):
    """The model at the default widths (bench:gpu), or at a stored policy's (bench/torch_load.py)."""

    def __init__(self, vocab=VOCAB, sentences=S, actions=C, observations=O, max_count=MAXCOUNT, side=SIDE, embedding=D, hidden=H, patch=PATCH, patch_features=PF):
        super().__init__()
        self.S, self.C, self.O, self.side, self.D, self.patch_side, self.PF = sentences, actions, observations, side, embedding, patch, patch_features
        D_, H_ = embedding, hidden
        self.words = nn.EmbeddingBag(vocab, D_, mode="sum")
        self.word_bias = nn.Parameter(torch.zeros(D_))
        self.sentence_position = nn.Parameter(torch.randn(sentences, D_) * 0.1)
        self.context1 = nn.Linear(CTX * D_ + 4 * (max_count + 1), H_)
        self.context2 = nn.Linear(H_, D_)
        self.keys = nn.Linear(D_, D_, bias=False)
        self.patch = nn.Linear(patch * patch * 3, patch_features)
        self.image = nn.Linear(2 * patch_features, D_)
        self.joint = nn.Linear(4 * D_, H_)
        self.action_query = nn.Linear(H_, D_, bias=False)
        self.action_prior = nn.Linear(D_, 1, bias=False)
        self.observation_query = nn.Linear(H_, D_, bias=False)
        self.observation_prior = nn.Linear(D_, 1, bias=False)
        self.value1 = nn.Linear(H_, H_)
        self.value2 = nn.Linear(H_, 1)

    def forward(self, ids, offsets, counts, image, masks, scales=None):
        """scales: each word's weight in its bag (the tfjs policy's 1/sqrt(words in the bag)); None: 1."""
        B, S_, C_, O_, D_, P = image.shape[0], self.S, self.C, self.O, self.D, self.patch_side
        slots = S_ + C_ + O_ + CTX
        words = F.relu(self.words(ids, offsets, per_sample_weights=scales).view(B, slots, D_) + self.word_bias)
        sentences = words[:, :S_] + self.sentence_position
        actions, observations = words[:, S_ : S_ + C_], words[:, S_ + C_ : S_ + C_ + O_]
        context = words[:, slots - CTX :].reshape(B, CTX * D_)
        query = F.relu(self.context2(F.relu(self.context1(torch.cat([context, counts], 1)))))
        sentence_logits = (sentences * self.keys(query).unsqueeze(1)).sum(2) / math.sqrt(D_) + (1 - masks[0]) * -1e9
        attended = (sentences * sentence_logits.softmax(1).unsqueeze(2)).sum(1)
        n = self.side // P
        patches = image[:, : n * P, : n * P].reshape(B, n, P, n, P, 3).permute(0, 1, 3, 2, 4, 5).reshape(B * n * n, P * P * 3)
        pf = F.relu(self.patch(patches)).view(B, n * n, self.PF)
        img = F.relu(self.image(torch.cat([pf.mean(1), pf.amax(1)], 1)))
        joint = F.relu(self.joint(torch.cat([attended, query, img, context[:, :D_]], 1)))

        def score(cands, q, prior, mask):
            return (cands * q(joint).unsqueeze(1)).sum(2) + prior(cands).squeeze(2) + (1 - mask) * -1e9

        action_logits = score(actions, self.action_query, self.action_prior, masks[1])
        observation_logits = score(observations, self.observation_query, self.observation_prior, masks[2])
        value = self.value2(F.relu(self.value1(joint))).squeeze(1)
        return action_logits, sentence_logits, observation_logits, value


def batch_inputs(B, device):
    ids = torch.randint(1, VOCAB, (B * SLOTS * WORDS_PER_SLOT,), device=device)
    offsets = torch.arange(0, B * SLOTS * WORDS_PER_SLOT, WORDS_PER_SLOT, device=device)
    counts = torch.zeros(B, 4 * (MAXCOUNT + 1), device=device)
    counts[:, 0] = 1
    image = torch.rand(B, SIDE, SIDE, 3, device=device)
    masks = (torch.ones(B, S, device=device), torch.ones(B, C, device=device), torch.ones(B, O, device=device))
    targets = (torch.randint(0, 6, (B,), device=device), torch.randint(0, 8, (B,), device=device), torch.randint(0, 4, (B,), device=device))
    return ids, offsets, counts, image, masks, targets


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", default="32,128,512")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tf32", action="store_true")
    ap.add_argument("--seconds", type=float, default=2.0)
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.allow_tf32 = a.tf32
    dev = torch.device(a.device)
    torch.manual_seed(0)
    model = Policy().to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    for B in [int(b) for b in a.batches.split(",")]:
        ids, offsets, counts, image, masks, (ta, ts, to) = batch_inputs(B, dev)

        def train():
            al, sl, ol, v = model(ids, offsets, counts, image, masks)
            loss = F.cross_entropy(al, ta) + 0.5 * (F.cross_entropy(sl, ts) + F.cross_entropy(ol, to)) + 0.5 * v.pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()

        @torch.no_grad()
        def act():
            al, sl, ol, v = model(ids, offsets, counts, image, masks)
            # the policy samples each part and reads the choices back to write its text
            torch.stack([al.argmax(1), sl.argmax(1), ol.argmax(1)]).cpu()

        rates = {}
        for name, fn in (("train", train), ("act", act)):
            for _ in range(3):
                fn()
            sync()
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < a.seconds:
                fn()
                n += 1
            sync()
            rates[name] = B * n / (time.perf_counter() - t0)
        print(json.dumps({"batch": B, "device": str(dev), "tf32": a.tf32, "train_samples_per_s": rates["train"], "act_samples_per_s": rates["act"]}), flush=True)


if __name__ == "__main__":
    main()
