# The peer of bench:step, run by hand only (never in CI): the same bench ViT (32×32×3, patch 4, dim 192, depth 6,
# 3 heads, MLP 768, 10 classes, cls token, batch 32, AdamW) in PyTorch eager on one CPU thread, σReparam without LN
# and plain pre-LN, as JSON. Usage (Debian's python3-torch; its libblas.so.3 alternative may be the slow reference
# BLAS, so point it at OpenBLAS for this process only):
#   OPENBLAS_NUM_THREADS=1 LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread \
#     /usr/bin/python3 test/bench/step_torch.py [--steps 10 --warmup 2] [--matmuls]
# --matmuls: the CPU time and FLOPs of one step's matrix products (aten::mm, addmm, bmm, shapes from torch.profiler,
# replayed under process_time), as bench:step --kernel-times reports for sigmatrain.
import argparse
import json
import math
import statistics
import time

import torch
import torch.autograd.profiler as autograd_profiler
import torch.nn as nn
import torch.nn.functional as F


class SigmaLinear(nn.Linear):
    """σReparam (Zhai et al. 2023): W' = γ/σ(W) · W, σ by one power step per training forward."""

    def __init__(self, i, o):
        super().__init__(i, o)
        self.gamma = nn.Parameter(torch.ones(()))
        self.register_buffer('u', F.normalize(torch.randn(i), dim=0))
        self.register_buffer('v', F.normalize(torch.randn(o), dim=0))

    def forward(self, x):
        if self.training:
            with torch.no_grad():
                self.v = F.normalize(self.weight @ self.u, dim=0)
                self.u = F.normalize(self.weight.t() @ self.v, dim=0)
        sigma = torch.einsum('o,oi,i->', self.v, self.weight, self.u)
        return F.linear(x, self.weight * (self.gamma / sigma), self.bias)


class Block(nn.Module):
    def __init__(self, d, h, m, lin, ln):
        super().__init__()
        self.h = h
        self.qkv, self.proj, self.fc1, self.fc2 = lin(d, 3 * d), lin(d, d), lin(d, m), lin(m, d)
        self.ln1 = nn.LayerNorm(d, eps=1e-6) if ln else nn.Identity()
        self.ln2 = nn.LayerNorm(d, eps=1e-6) if ln else nn.Identity()

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        p = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // self.h), -1)
        entropy = -(p * torch.log(p.clamp_min(1e-30))).sum(-1).mean((0, 2)).detach()  # as sigmatrain reports it
        x = x + self.proj((p @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate='tanh')), entropy


class ViT(nn.Module):
    def __init__(self, sigma, ln, d=192, depth=6, h=3, m=768, patch=4, size=32, classes=10):
        super().__init__()
        lin = SigmaLinear if sigma else nn.Linear
        self.patch = patch
        self.embed = lin(patch * patch * 3, d)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.randn(1, (size // patch) ** 2 + 1, d) * 0.02)
        self.blocks = nn.ModuleList(Block(d, h, m, lin, ln) for _ in range(depth))
        self.norm = nn.LayerNorm(d, eps=1e-6) if ln else nn.Identity()
        self.head = lin(d, classes)

    def forward(self, x):  # x [B, H, W, C]
        b, s, _, c = x.shape
        g = s // self.patch
        x = x.view(b, g, self.patch, g, self.patch, c).permute(0, 1, 3, 2, 4, 5).reshape(b, g * g, -1)
        x = torch.cat([self.cls.expand(b, -1, -1), self.embed(x)], 1) + self.pos
        for blk in self.blocks:
            x, _ = blk(x)
        return self.head(self.norm(x)[:, 0])


MATMUL_OPS = ('aten::mm', 'aten::addmm', 'aten::bmm', 'aten::baddbmm')


def step(model, opt, x, y):
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y, reduction='sum')
    loss.backward()
    opt.step()


def matmul_time(model, opt, x, y, reps=3):
    """CPU ms and GFLOP of the matrix products of one training step (aten::mm, addmm, bmm, baddbmm): their shapes
    are recorded by the profiler in one step, then the same products are replayed and timed by process_time, which
    other load on the machine does not inflate (the profiler's own times are wall-clock)."""
    with autograd_profiler.profile(record_shapes=True) as prof:
        step(model, opt, x, y)
    products = []
    for e in prof.function_events:
        if e.name not in MATMUL_OPS:
            continue
        shapes = [sh for sh in e.input_shapes if len(sh) >= 2]
        a, b = shapes[-2], shapes[-1]  # addmm/baddbmm: (bias, a, b, ...)
        products.append((torch.randn(*a), torch.randn(*b)))
    flop = sum(2 * a.numel() * b.shape[-1] for a, b in products)
    totals = []
    for _ in range(reps):
        c0 = time.process_time()
        for a, b in products:
            torch.matmul(a, b)
        totals.append((time.process_time() - c0) * 1000)
    ms = statistics.median(totals)
    return {'cpuMs': round(ms, 1), 'calls': len(products), 'gflop': round(flop / 1e9, 3), 'gflops': round(flop / 1e6 / ms, 2),
            'timing': 'the step\'s products replayed alone, median of %d, CPU time' % reps}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--steps', type=int, default=10)
    ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--matmuls', action='store_true')
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x, y = torch.randn(32, 32, 32, 3), torch.arange(32) % 10
    results = []
    for name, sigma, ln in [('sigmaReparam_noLN', True, False), ('plain_preLN', False, True)]:
        model = ViT(sigma, ln)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        times, cpu = [], []
        for s in range(a.warmup + a.steps):
            c0 = time.process_time()
            t0 = time.perf_counter()
            step(model, opt, x, y)
            if s >= a.warmup:
                times.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
        ms = statistics.median(times)
        # CPU time per step (as bench:step's cpuMsPerStep): what to compare on a loaded shared machine.
        r = {'model': name, 'msPerStep': round(ms, 1), 'cpuMsPerStep': round(statistics.median(cpu), 1),
             'samplesPerSecond': round(32000 / ms, 2)}
        if a.matmuls:
            mm = matmul_time(model, opt, x, y)
            r.update({'matmulCpuMsPerStep': mm['cpuMs'], 'matmulCpuShare': round(mm['cpuMs'] / r['cpuMsPerStep'], 3),
                      'matmulGflops': mm['gflops'], 'matmuls': mm})
        results.append(r)
    print(json.dumps({'bench': 'step', 'peer': f'pytorch {torch.__version__}', 'threads': torch.get_num_threads(), 'results': results}, indent=2))


if __name__ == '__main__':
    main()
