#!/usr/bin/python3
# PyTorch (one thread) counterpart of test/bench/seq2seq.ts: the same Transformer-base training step (forward +
# backward, no optimizer): d512, 6+6 layers, 8 heads, FFN 2048, σReparam on every linear (one power step per
# forward, as the paper's SNLinear), post-LN, tied embeddings scaled by √d, sinusoidal positions, label smoothing 0.1.
# Usage (hand-run, not CI; Debian's python3-torch): /usr/bin/python3 test/bench/seq2seq_torch.py [batch src tgt vocab steps]
import json, math, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
B, S, T, V, STEPS = (int(x) for x in (sys.argv[1:] + ['16', '32', '32', '8000', '3'][len(sys.argv) - 1:]))
D, H, FF, L = 512, 8, 2048, 6


class SNLinear(nn.Linear):
    def __init__(self, i, o):
        super().__init__(i, o)
        nn.init.xavier_normal_(self.weight)
        nn.init.zeros_(self.bias)
        self.gamma = nn.Parameter(torch.ones(()))
        self.register_buffer('u', F.normalize(torch.randn(i), dim=0))

    def forward(self, x):
        with torch.no_grad():
            v = F.normalize(self.weight @ self.u, dim=0)
            self.u.copy_(F.normalize(self.weight.t() @ v, dim=0))
        sigma = torch.dot(v, self.weight @ self.u)
        return F.linear(x, self.weight * (self.gamma / sigma), self.bias)


class Attn(nn.Module):
    def __init__(self):
        super().__init__()
        self.q, self.k, self.v, self.o = SNLinear(D, D), SNLinear(D, D), SNLinear(D, D), SNLinear(D, D)

    def forward(self, x, ctx, causal):
        b, tq, _ = x.shape
        tk = ctx.shape[1]
        q = self.q(x).view(b, tq, H, -1).transpose(1, 2) / math.sqrt(D // H)
        k = self.k(ctx).view(b, tk, H, -1).transpose(1, 2)
        v = self.v(ctx).view(b, tk, H, -1).transpose(1, 2)
        logits = q @ k.transpose(-1, -2)
        if causal:
            logits = logits.masked_fill(torch.triu(torch.ones(tq, tk, dtype=torch.bool), 1), -1e9)
        p = logits.log_softmax(-1).exp()
        return self.o((p @ v).transpose(1, 2).reshape(b, tq, D))


class Layer(nn.Module):
    def __init__(self, cross):
        super().__init__()
        self.self_attn, self.ln1 = Attn(), nn.LayerNorm(D)
        self.cross = Attn() if cross else None
        self.ln2 = nn.LayerNorm(D) if cross else None
        self.fc1, self.fc2, self.ln3 = SNLinear(D, FF), SNLinear(FF, D), nn.LayerNorm(D)

    def forward(self, x, mem=None):
        x = self.ln1(x + F.dropout(self.self_attn(x, x, mem is not None), 0.1))
        if self.cross is not None:
            x = self.ln2(x + F.dropout(self.cross(x, mem, False), 0.1))
        return self.ln3(x + F.dropout(self.fc2(F.relu(self.fc1(x))), 0.1))


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Parameter(torch.randn(V, D) * D ** -0.5)
        self.enc = nn.ModuleList([Layer(False) for _ in range(L)])
        self.dec = nn.ModuleList([Layer(True) for _ in range(L)])
        pos = torch.arange(1024).unsqueeze(1) / torch.pow(10000, torch.arange(0, D, 2) / D)
        pe = torch.zeros(1024, D)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos), torch.cos(pos)
        self.register_buffer('pe', pe)

    def emb(self, ids):
        return F.dropout(self.embed[ids] * math.sqrt(D) + self.pe[: ids.shape[1]], 0.1)

    def forward(self, src, tgt):
        m = self.emb(src)
        for layer in self.enc:
            m = layer(m)
        y = self.emb(tgt)
        for layer in self.dec:
            y = layer(y, m)
        return y @ self.embed.t()


torch.manual_seed(0)
model = Model().train()
src = torch.randint(3, V, (B, S))
tgt = torch.randint(3, V, (B, T))
labels = torch.randint(3, V, (B * T,))
times, cpu_times = [], []
for step in range(STEPS + 1):
    t0, c0 = time.perf_counter(), time.process_time()
    logits = model(src, tgt).view(-1, V)
    loss = F.cross_entropy(logits, labels, label_smoothing=0.1, reduction='sum')
    model.zero_grad(set_to_none=True)
    loss.backward()
    if step > 0:
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
# Per second of this process's CPU time (one thread): on a shared machine wall time measures the neighbours.
sec = sum(cpu_times) / len(cpu_times)
print(json.dumps({
    'bench': 'seq2seq-step', 'backend': f'pytorch {torch.__version__} cpu', 'threads': torch.get_num_threads(),
    'shapes': {'batch': B, 'srcTokens': S, 'tgtTokens': T, 'vocab': V},
    'params': sum(p.numel() for p in model.parameters()),
    'cpuSecondsPerStep': round(sec, 2), 'wallSecondsPerStep': [round(t, 2) for t in times], 'targetTokensPerSecond': round(B * T / sec, 1), 'allTokensPerSecond': round(B * (S + T) / sec, 1),
}, indent=2))
