#!/usr/bin/env python3
"""Reference for check_spectral.c, computed in float64 with numpy's FFT
(not our code): a deterministic test frame and, for it, the one-sided
power spectrum, the spectral kurtosis and the envelope spectrum with the
conventions of schema/spectral.h.  Prints whitespace-separated numbers:
n seg fs lo hi, the frame (n), power (n/2+1), sk (seg/2+1), env (n/2+1).
With the argument "padded": the frame's first 1000 samples zero-padded to
n (spectral_power_padded, spectral_envelope_padded), and the header gains
len: n seg fs lo hi len, the frame (len), power, sk, env as above."""
import sys

import numpy as np

n, seg, fs, lo, hi = 1024, 64, 8192.0, 1500.0, 2500.0
t = np.arange(n) / fs
rng = np.random.default_rng(12)
x = 0.7 * np.sin(2 * np.pi * 440.0 * t + 0.3) + 0.2 * rng.standard_normal(n)
# impacts every 1/93 s ringing at 2 kHz: what a bearing defect looks like
for t0 in np.arange(0.001, n / fs, 1 / 93.0):
    m = t >= t0
    x[m] += 1.5 * np.exp(-(t[m] - t0) * 900.0) * np.sin(2 * np.pi * 2000.0 * (t[m] - t0))
x = x.astype(np.float32).astype(np.float64)


def power(v, nfft=None):
    m = len(v)
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(m) / m)
    X = np.fft.rfft((v - v.mean()) * w, nfft or m)
    p = np.abs(X) ** 2 / (m * np.sum(w * w))
    p[1:-1] *= 2
    return p


def kurt(v):
    acc1 = np.zeros(seg // 2 + 1); acc2 = np.zeros(seg // 2 + 1); c = 0
    for s in range(0, len(v) - seg + 1, seg // 2):
        p = power(v[s:s + seg]); acc1 += p; acc2 += p * p; c += 1
    m1, m2 = acc1 / c, acc2 / c
    sk = np.where(m1 > 0, m2 / np.where(m1 > 0, m1, 1) ** 2 - 2, 0)
    sk[0] = sk[-1] = 0
    return sk


def envelope(v):
    X = np.fft.fft(v - v.mean(), n)
    f = np.arange(n) * fs / n
    keep = (np.arange(n) > 0) & (np.arange(n) < n // 2) & (f >= lo) & (f <= hi)
    a = np.fft.ifft(np.where(keep, 2 * X, 0))
    return power(np.abs(a)[:len(v)], n)


if sys.argv[1:] == ["padded"]:
    v = x[:1000]
    out = [n, seg, fs, lo, hi, len(v)] + list(v) + list(power(v, n)) + list(kurt(v)) + \
        list(envelope(v))
else:
    out = [n, seg, fs, lo, hi] + list(x) + list(power(x)) + list(kurt(x)) + list(envelope(x))
print(" ".join(repr(float(v)) for v in out))
