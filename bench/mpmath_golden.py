#!/usr/bin/python3
"""SPEC section 1 evaluated with mpmath at 50 digits on a slice of the benchmark case.

The slice is the one BM_golden_exact_slice in bench_golden.cpp times: D = 128,
theta = 10000, B = 512, half layout, xpos on, centre 4096 (that of N = 8192), 8 heads,
queries at positions 0..7 and keys at -8..7. Like the C++ exact path, cos, sin and
sigma are computed once per (position, pair) and shared by all heads. Prints the
elements (of q_out + k_out) per second.

Run with the system interpreter, which has mpmath: /usr/bin/python3 bench/mpmath_golden.py
"""
import argparse
import random
import struct
import time

from mpmath import mp, mpf, cos, sin, power


def fp32(x):
    """x rounded to float32, as the benchmark's inputs are."""
    return struct.unpack("f", struct.pack("f", x))[0]


def rotations(positions, d, theta, scale_base, centre):
    """cos phi, sin phi, sigma and 1/sigma for every (position, pair)."""
    half = d // 2
    out = {}
    for j in range(half):
        omega = power(mpf(theta), mpf(-2 * j) / d)
        zeta = (mpf(2 * j) + mpf(4) / 10 * d) / (mpf(14) / 10 * d)
        for p in positions:
            sigma = power(zeta, mpf(p - centre) / scale_base)
            out[p, j] = (cos(p * omega), sin(p * omega), sigma, 1 / sigma)
    return out


def rotate(x, p, rot, query):
    half = len(x) // 2
    y = [None] * len(x)
    for j in range(half):
        c, s, sigma, inv = rot[p, j]
        e = sigma if query else inv
        a, b = mpf(x[j]), mpf(x[j + half])
        y[j] = float((a * c - b * s) * e)
        y[j + half] = float((b * c + a * s) * e)
    return y


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--queries", type=int, default=8, help="query rows (positions 0..n-1)")
    ap.add_argument("--memory", type=int, default=8, help="memory keys (positions -m..-1)")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--centre", type=int, default=4096)
    args = ap.parse_args()
    mp.dps = 50
    rng = random.Random(2024)
    d, n, m = args.dim, args.queries, args.memory
    q_pos = list(range(n))
    k_pos = list(range(-m, n))
    rows = [(p, query, [fp32(rng.gauss(0.0, 1.0)) for _ in range(d)])
            for _ in range(args.heads)
            for positions, query in ((q_pos, True), (k_pos, False))
            for p in positions]
    start = time.perf_counter()
    rot = rotations(sorted(set(q_pos + k_pos)), d, 10000, 512, args.centre)
    for p, query, x in rows:
        rotate(x, p, rot, query)
    seconds = time.perf_counter() - start
    elements = len(rows) * d
    print(f"mpmath dps=50: {elements} elements in {seconds:.3f} s = {elements / seconds:,.0f} elements/s")


if __name__ == "__main__":
    main()
