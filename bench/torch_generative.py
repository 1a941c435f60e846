"""
The generative policy of src/plugins/policy/generative/model.ts written in PyTorch, for
`npm run bench:generative`: the same shapes (tied token embeddings, learned prompt, answer and
patch positions, pre-norm encoder and decoder blocks with 4x ReLU MLPs, a two-layer value head,
with --copy the copy head: attention over the prompt's positions adding its weights, times a
softplus strength, to the logits of each position's token and of its bare form),
a training step as the tfjs learner's (the answer's teacher-forced cross-entropy, summed over
tokens and averaged over the batch, then Adam), on random inputs of the given prompt and answer
lengths. Prints one JSON line per batch size: {"batch": B, "train_answers_per_s": ...}.

  python3 bench/torch_generative.py --batches 16,64 --prompt 480 --answer 53 [--encoder-layers 1] [--copy] [--device cpu]
"""
import argparse, json, time
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, heads, cross):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(d)
        self.self_attn = nn.MultiheadAttention(d, heads, bias=False, batch_first=True)
        self.cross = cross
        if cross:
            self.norm_cross = nn.LayerNorm(d)
            self.cross_attn = nn.MultiheadAttention(d, heads, bias=False, batch_first=True)
        self.norm2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.ReLU(), nn.Linear(4 * d, d))

    def forward(self, x, memory=None, causal=None, memory_pad=None, self_pad=None):
        h = self.norm1(x)
        x = x + self.self_attn(h, h, h, attn_mask=causal, key_padding_mask=self_pad, need_weights=False)[0]
        if self.cross:
            c = self.norm_cross(x)
            x = x + self.cross_attn(c, memory, memory, key_padding_mask=memory_pad, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class Generator(nn.Module):
    def __init__(self, vocab=702, d=64, heads=4, encoder_layers=1, decoder_layers=2, prompt=512, answer=96, patches=16, patch_size=192, copy=False):
        super().__init__()
        self.copy = copy
        if copy:
            self.copy_q = nn.Linear(d, d, bias=False)
            self.copy_k = nn.Linear(d, d, bias=False)
            self.copy_gate = nn.Linear(d, 1)
            # the bare form of each token (a fixed map; random here, as the inputs are)
            self.register_buffer("bare", torch.randint(0, vocab, (vocab,)))
        self.tokens = nn.Embedding(vocab, d)
        self.prompt_position = nn.Parameter(torch.randn(prompt, d) * 0.02)
        self.answer_position = nn.Parameter(torch.randn(answer, d) * 0.02)
        self.patch = nn.Linear(patch_size, d)
        self.patch_position = nn.Parameter(torch.randn(patches, d) * 0.02)
        self.encoder = nn.ModuleList([Block(d, heads, False) for _ in range(encoder_layers)])
        self.decoder = nn.ModuleList([Block(d, heads, True) for _ in range(decoder_layers)])
        self.final = nn.LayerNorm(d)
        self.output_bias = nn.Parameter(torch.zeros(vocab))
        self.value = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, 1))

    def forward(self, prompt, patches, inputs):
        B, P = prompt.shape
        T = inputs.shape[1]
        x = torch.cat([self.tokens(prompt) + self.prompt_position[:P], self.patch(patches) + self.patch_position], 1)
        pad = torch.cat([prompt == 0, torch.zeros(B, patches.shape[1], dtype=torch.bool, device=prompt.device)], 1)
        for block in self.encoder:
            x = block(x, self_pad=pad)
        y = self.tokens(inputs) + self.answer_position[:T]
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool, device=prompt.device), 1)
        for block in self.decoder:
            y = block(y, memory=x, causal=causal, memory_pad=pad)
        out = self.final(y)
        logits = out @ self.tokens.weight.T + self.output_bias
        if self.copy:
            scores = self.copy_q(out) @ self.copy_k(x[:, :P]).transpose(1, 2) / out.shape[-1] ** 0.5
            attend = torch.softmax(scores.masked_fill((prompt == 0)[:, None, :], -1e9), -1)
            tokens = torch.maximum(F.one_hot(prompt, logits.shape[-1]), F.one_hot(self.bare[prompt], logits.shape[-1])).float()
            logits = logits + (attend @ tokens) * F.softplus(self.copy_gate(out))
        return logits, self.value(out[:, 0]).squeeze(-1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", default="16,64")
    ap.add_argument("--prompt", type=int, default=480)
    ap.add_argument("--answer", type=int, default=53)
    ap.add_argument("--encoder-layers", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--copy", action="store_true")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args()
    torch.manual_seed(0)
    model = Generator(encoder_layers=a.encoder_layers, copy=a.copy).to(a.device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for B in [int(b) for b in a.batches.split(",")]:
        prompt = torch.randint(4, 702, (B, a.prompt), device=a.device)
        patches = torch.rand(B, 16, 192, device=a.device) - 0.5
        answer = torch.randint(4, 702, (B, a.answer), device=a.device)
        inputs = torch.cat([torch.ones(B, 1, dtype=torch.long, device=a.device), answer[:, :-1]], 1)

        def step():
            logits, value = model(prompt, patches, inputs)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), answer.reshape(-1), reduction="sum") / B + 0.0 * value.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        step()
        if a.device == "cuda":
            torch.cuda.synchronize()
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < a.seconds:
            step()
            n += 1
        if a.device == "cuda":
            torch.cuda.synchronize()
        print(json.dumps({"batch": B, "device": a.device, "train_answers_per_s": B * n / (time.perf_counter() - t0)}), flush=True)


if __name__ == "__main__":
    main()
