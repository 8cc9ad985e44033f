# The peer of bench:allreduce, run by the bench with `--peer gloo` (never in CI): PyTorch's gloo all-reduce (float32
# sum, in place) over N processes on loopback, timed as the ring is timed: per iteration a barrier, then the
# all-reduce; the slowest rank per iteration; the median over iterations. Prints one JSON line.
# Usage: /usr/bin/python3 test/bench/allreduce_gloo.py --world 2 --sizes-bytes 1048576,67108864 --iters 20,3 --warmup 2,2
import argparse
import json
import os
import resource
import socket
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def rank_main(rank, world, port, sizes, iters, warmup, out):
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=world)
    per_size = []
    for s, nbytes in enumerate(sizes):
        a = torch.full((nbytes // 4,), 1e-3 * (rank + 1), dtype=torch.float32)
        times = []
        c0 = time.process_time()
        x0 = 0
        for it in range(warmup[s] + iters[s]):
            if it == warmup[s]:
                c0 = time.process_time()
                ru = resource.getrusage(resource.RUSAGE_SELF)
                x0 = ru.ru_nvcsw + ru.ru_nivcsw
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(a)
            dt = time.perf_counter() - t0
            if it >= warmup[s]:
                times.append(dt)
        cpu = (time.process_time() - c0) / iters[s]
        ru = resource.getrusage(resource.RUSAGE_SELF)
        switches = (ru.ru_nvcsw + ru.ru_nivcsw - x0) / iters[s]  # all threads, as the ring bench counts
        # Slowest rank per iteration, as the ring bench does.
        t = torch.tensor(times, dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        c = torch.tensor([cpu, switches], dtype=torch.float64)
        dist.all_reduce(c)
        per_size.append({'times': t.tolist(), 'cpuSecondsPerRank': c[0].item() / world, 'contextSwitchesPerRank': c[1].item() / world})
    if rank == 0:
        out.put(per_size)
    dist.barrier()
    dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--world', type=int, default=2)
    ap.add_argument('--sizes-bytes', required=True)
    ap.add_argument('--iters', required=True)
    ap.add_argument('--warmup', required=True)
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes_bytes.split(',')]
    iters = [int(x) for x in args.iters.split(',')]
    warmup = [int(x) for x in args.warmup.split(',')]
    if not (len(sizes) == len(iters) == len(warmup)):
        raise SystemExit('--sizes-bytes, --iters and --warmup need the same number of entries')
    ctx = mp.get_context('spawn')
    out = ctx.SimpleQueue()
    port = free_port()
    procs = [ctx.Process(target=rank_main, args=(r, args.world, port, sizes, iters, warmup, out)) for r in range(args.world)]
    for p in procs:
        p.start()
    per_size = out.get()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f'gloo rank exited with {p.exitcode}')
    n = args.world
    results = []
    for nbytes, r in zip(sizes, per_size):
        t = statistics.median(r['times'])
        algbw = nbytes / t / 1e9
        results.append({
            'bytes': nbytes,
            'iterations': len(r['times']),
            'medianSeconds': t,
            'minSeconds': min(r['times']),
            'algbwGBps': algbw,
            'busbwGBps': algbw * 2 * (n - 1) / n,
            'cpuSecondsPerRank': r['cpuSecondsPerRank'],
            'contextSwitchesPerRank': r['contextSwitchesPerRank'],
            'times': r['times'],
        })
    print(json.dumps({'torch': torch.__version__, 'backend': 'gloo', 'worldSize': n, 'results': results}))


if __name__ == '__main__':
    main()
