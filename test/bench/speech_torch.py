# The PyTorch peer of test/bench/speech.ts: input frames/s of one training step's forward + backward of the same
# speech model shape (σReparam on every linear with one power step, conv kernel 7 stride 3 + GLU, CAPE, no LN,
# joint QKV, GELU MLP, CTC head, dropout 0.1), one CPU thread.
# Usage: /usr/bin/python3 test/bench/speech_torch.py [--dim 256 --depth 6 --heads 4 --mlp 1024 --B 4 --T 600 --S 60 --steps 3]
import argparse
import math
import time

import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
for k, v in dict(dim=256, depth=6, heads=4, mlp=1024, B=4, T=600, S=60, steps=3).items():
    p.add_argument('--' + k, type=int, default=v)
a = p.parse_args()
torch.set_num_threads(1)
torch.manual_seed(0)


class SNLinear(torch.nn.Module):
    """y = x (γ/σ(W) W)ᵀ + b; σ = vᵀWu after one power step on u (no gradient through u, v)."""

    def __init__(self, i, o):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(o, i) * 0.02)
        self.bias = torch.nn.Parameter(torch.zeros(o))
        self.gamma = torch.nn.Parameter(torch.ones(()))
        self.register_buffer('u', F.normalize(torch.randn(i), dim=0))

    def effective(self):
        with torch.no_grad():
            v = F.normalize(self.weight @ self.u, dim=0)
            self.u.copy_(F.normalize(self.weight.t() @ v, dim=0))
        sigma = v @ self.weight @ self.u
        return self.weight * (self.gamma / sigma)

    def forward(self, x):
        return F.linear(x, self.effective(), self.bias)


class Block(torch.nn.Module):
    def __init__(self, d, h, m):
        super().__init__()
        self.h = h
        self.qkv, self.proj = SNLinear(d, 3 * d), SNLinear(d, d)
        self.fc1, self.fc2 = SNLinear(d, m), SNLinear(m, d)

    def forward(self, x, key_mask):
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.h, D // self.h).permute(2, 0, 3, 1, 4)
        logits = (q / math.sqrt(D // self.h)) @ k.transpose(-1, -2) + (1 - key_mask)[:, None, None, :] * -1e9
        logp = torch.log_softmax(logits, -1)
        prob = logp.exp()
        entropy = -(prob * logp).sum(-1).mean((0, 2))  # the diagnostic our model computes too
        o = (prob @ v).transpose(1, 2).reshape(B, T, D)
        x = x + F.dropout(self.proj(o), 0.1, True)
        x = x + F.dropout(self.fc2(F.gelu(self.fc1(x), approximate='tanh')), 0.1, True)
        return x * key_mask[..., None], entropy


class Speech(torch.nn.Module):
    def __init__(self, d, depth, h, m, vocab=29, feats=80):
        super().__init__()
        self.d = d
        self.conv = SNLinear(7 * feats, 2 * d)
        self.blocks = torch.nn.ModuleList(Block(d, h, m) for _ in range(depth))
        self.head = SNLinear(d, vocab)
        self.register_buffer('freq', 30 * torch.exp(torch.arange(0, d, 2) * (-math.log(1e4) / d)))

    def forward(self, x, lengths):
        B, T, Fd = x.shape
        x = x * (torch.arange(T)[None] < lengths[:, None])[..., None]
        w = self.conv.effective().view(2 * self.d, 7, Fd).permute(0, 2, 1)
        x = F.glu(F.conv1d(x.transpose(1, 2), w, self.conv.bias, stride=3, padding=3).transpose(1, 2), -1)
        Tp = x.shape[1]
        out_len = (lengths + 2) // 3
        mask = (torch.arange(Tp)[None] < out_len[:, None]).float()
        pos = torch.arange(Tp)[None] * 0.03 - (out_len[:, None] - 1) * 0.015
        pos = (pos + torch.empty(B, 1).uniform_(-60, 60) + torch.empty(B, Tp).uniform_(-0.015, 0.015)) * \
            torch.empty(B, 1).uniform_(-math.log(1.1), math.log(1.1)).exp()
        ph = pos[..., None] * self.freq
        x = x + torch.stack([ph.sin(), ph.cos()], -1).view(B, Tp, self.d)
        x = F.dropout(x, 0.1, True) * mask[..., None]
        for blk in self.blocks:
            x, _ = blk(x, mask)
        return self.head(x), out_len


model = Speech(a.dim, a.depth, a.heads, a.mlp)
feats = torch.randn(a.B, a.T, 80)
lengths = torch.tensor([a.T - 30 * b for b in range(a.B)])
targets = torch.tensor([3 + (i % 26) for i in range(a.B * a.S)]).view(a.B, a.S)


def step():
    t0, c0 = time.perf_counter(), time.process_time()
    model.zero_grad()
    logits, out_len = model(feats, lengths)
    loss = F.ctc_loss(logits.log_softmax(-1).transpose(0, 1), targets, out_len, torch.full((a.B,), a.S), reduction='mean')
    loss.backward()
    return time.perf_counter() - t0, time.process_time() - c0


n_params = sum(p.numel() for p in model.parameters())
print(f'speech bench on PyTorch {torch.__version__}, {torch.get_num_threads()} thread: d{a.dim} depth {a.depth} '
      f'heads {a.heads} mlp {a.mlp} ({n_params / 1e6:.2f} M params), B={a.B} T={a.T} frames, S={a.S}')
step()
runs = [step() for _ in range(a.steps)]
frames = int(lengths.sum())
for what, i in (('wall', 0), ('cpu', 1)):
    med = sorted(r[i] for r in runs)[len(runs) // 2]
    print(f'forward+backward ({what} time): {med * 1000:.0f} ms/step (median of {a.steps}), {frames / med:.0f} input frames/s '
          f'({frames / 100 / med:.2f} s of audio per s)')
