#!/usr/bin/python3
"""gen-vectors.py - reference vectors for tests/dsp (Lily's DSP against scipy/numpy).

Run with Debian's python (numpy 1.24, scipy 1.10):  /usr/bin/python3 gen-vectors.py
from this folder. Writes small .npy files beside itself; the C tests read them and never
need Python. Deterministic: running it again gives the same files.

What each file holds (every filter design is scipy.signal's own, every draw numpy's own):
  iir-cases.npy      [N, 4] f8: family (0 butter, 1 cheby1, 2 ellip, 3 bessel), order,
                     integer cutoff in Hz at 48 kHz, number of sections
  iir-sos.npy        [N, 6, 6] f8: scipy's sos (rows past the section count are zero);
                     wn = cutoff / 24000, cheby1 rp 0.1, ellip rp 0.1 rs 60, bessel 'phase'
  signal.npy         [6000] f4: 0.125 s test signal (sines, a chirp and noise)
  sosfiltfilt-cases.npy / sosfiltfilt-out.npy   f8: sosfiltfilt(sos, signal[:2000]) per case
  resample-cases.npy / resample-out-K.npy       f8: resample_poly(signal[:2000], up, down)
  lowpass-cases.npy  [M, 3] f8: family, order, cutoff Hz (may be fractional: AudioSR
                     truncates it)
  lowpass-out.npy    [M, 6000] f4: AudioSR's lowpass (spec_check.py cutoff_lowpass)
  np-random-seeds.npy   [S, 3] i8: seed low word, seed high word, choice index of
                     np.random.seed(seed); np.random.choice(4 families)
  np-random-raw.npy  [2, 8] i8: first 8 raw 32-bit outputs for seed 42 and seed 2**32 + 7
  np-random-randint.npy [20] i8: seed 42, randint(0, 10) x 20 (exercises the rejection)
  mel-fb-nonzero.npy [K, 3] f8: row, column, value of librosa's Slaney filterbank (float32
                     values), written as spec_check.py builds it (librosa 0.9.2's steps)
  restore-cases.npy / restore-K-{cond,out,want}.npy   AudioSR's postprocessing on short
                     signals (shorter than a frame, a few frames, an unclamped ratio, silent condition)
"""
import os

import numpy as np
import scipy.signal as ss

FS = 48000
FAMILIES = ["butter", "cheby1", "ellip", "bessel"]
HERE = os.path.dirname(os.path.abspath(__file__))


def save(name, arr):
    np.save(os.path.join(HERE, name), arr)


def design(family, order, cutoff):
    wn = int(cutoff) / (FS / 2)
    if family == 0:
        return ss.butter(order, wn, btype="low", output="sos")
    if family == 1:
        return ss.cheby1(order, 0.1, wn, btype="low", output="sos")
    if family == 2:
        return ss.ellip(order, 0.1, 60, wn, btype="low", output="sos")
    return ss.bessel(order, wn, btype="low", output="sos")


def audiosr_lowpass(x, cutoff, family, order):
    """spec_check.py cutoff_lowpass: AudioSR's lowpass.py"""
    hi = int(cutoff) / (FS / 2)
    sos = design(family, order, cutoff)
    y = ss.sosfiltfilt(sos, x)
    fd = int(hi * FS)
    z = ss.resample_poly(ss.resample_poly(y, fd, FS), FS, fd)
    z = np.pad(z, (0, max(0, len(y) - len(z))))[:len(y)]
    return ss.sosfiltfilt(sos, z)


def hann_periodic(n):
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


def lstft(x, n_fft=2048, hop=512):  # librosa 0.9 stft: center, zero pad, complex64 out
    y = np.pad(x.astype(np.float64), (n_fft // 2, n_fft // 2))
    n = 1 + (len(y) - n_fft) // hop
    idx = np.arange(n_fft)[:, None] + hop * np.arange(n)[None, :]
    return np.fft.rfft(hann_periodic(n_fft)[:, None] * y[idx], axis=0).astype(np.complex64)


def listft(S, length, n_fft=2048, hop=512):
    n = min(S.shape[1], int(np.ceil((length + n_fft) / hop)))
    w = hann_periodic(n_fft)
    frames = w[:, None] * np.fft.irfft(S[:, :n], n=n_fft, axis=0)
    out = np.zeros(n_fft + hop * (n - 1))
    wss = np.zeros_like(out)
    for i in range(n):
        out[i * hop:i * hop + n_fft] += frames[:, i]
        wss[i * hop:i * hop + n_fft] += w ** 2
    nz = wss > np.finfo(np.float32).tiny
    out[nz] /= wss[nz]
    out = out[n_fft // 2:]
    return np.pad(out, (0, max(0, length - len(out))))[:length]


def cutoff_index(energy, frac=0.985):
    c = np.cumsum(energy)
    thr = c[-1] * frac
    for i in range(1, len(c)):
        if c[-i] < thr:
            return len(c) - i
    return 0


def audiosr_restore(cond, out):
    """LatentDiffusion.postprocessing with spec.md 10's numbers (float64 sums)."""
    Sg, So = lstft(cond), lstft(out)
    c = cutoff_index(np.abs(Sg).astype(np.float64).sum(1))
    num = np.abs(Sg[c]).astype(np.float64).sum()
    den = np.abs(So[c]).astype(np.float64).sum()
    r = min(max(num / den, 0.8), 1.2) if den > 0 else (1.2 if num > 0 else 1.0)
    So[:c] = Sg[:c] / r
    return listft(So, len(out)), c, r


def slaney_fb():
    """librosa 0.9.2 filters.mel(48000, 2048, 256, 20, 24000), step by step, float32."""
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0

    def hz_to_mel(f):
        return min_log_mel + np.log(f / min_log_hz) / logstep if f >= min_log_hz else f / f_sp

    def mel_to_hz(m):
        hz = f_sp * m
        log_t = m >= min_log_mel
        hz[log_t] = min_log_hz * np.exp(logstep * (m[log_t] - min_log_mel))
        return hz

    fftfreqs = np.fft.rfftfreq(n=2048, d=1.0 / FS)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(20.0), hz_to_mel(24000.0), 258))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    w = np.zeros((256, 1025), dtype=np.float32)
    for i in range(256):
        w[i] = np.maximum(0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
    w *= (2.0 / (mel_f[2:258] - mel_f[:256]))[:, None]
    return w


def main():
    # ---- IIR designs
    cases, soss = [], []
    for fam in range(4):
        for order in range(1, 13):
            for cutoff in (2000, 4000, 7781, 12000, 16000):
                sos = design(fam, order, cutoff)
                pad = np.zeros((6, 6))
                pad[:len(sos)] = sos
                cases.append([fam, order, cutoff, len(sos)])
                soss.append(pad)
    save("iir-cases.npy", np.array(cases, dtype=np.float64))
    save("iir-sos.npy", np.array(soss, dtype=np.float64))

    # ---- test signal
    n = 6000
    t = np.arange(n) / FS
    rs = np.random.RandomState(1234)
    x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 5000 * t + 0.3)
         + 0.1 * np.sin(2 * np.pi * (200 + 60000 * t) * t) + 0.1 * rs.standard_normal(n)
         + 0.05)
    x = x.astype(np.float32)
    save("signal.npy", x)
    xd = x.astype(np.float64)

    # ---- sosfiltfilt alone
    sf_cases = [[0, 8, 7781], [1, 5, 3000], [3, 12, 12000], [2, 3, 16000]]
    save("sosfiltfilt-cases.npy", np.array(sf_cases, dtype=np.float64))
    save("sosfiltfilt-out.npy", np.array([ss.sosfiltfilt(design(*c), xd[:2000])
                                          for c in sf_cases]))

    # ---- resample_poly alone (AudioSR's pairs and some awkward ones)
    rp_cases = [[15562, 48000], [48000, 15562], [3, 7], [7, 3], [8000, 48000], [44100, 48000]]
    save("resample-cases.npy", np.array(rp_cases, dtype=np.float64))
    for k, (up, down) in enumerate(rp_cases):
        save("resample-out-%d.npy" % k, ss.resample_poly(xd[:2000], up, down))

    # ---- AudioSR's whole lowpass
    lp_cases = [[0, 8, 7781.25], [1, 8, 4000], [3, 8, 12000], [2, 8, 2000], [0, 2, 16000],
                [1, 10, 3727.9], [3, 5, 6000.5], [2, 9, 11025]]
    save("lowpass-cases.npy", np.array(lp_cases, dtype=np.float64))
    save("lowpass-out.npy", np.array([audiosr_lowpass(xd, c, f, o) for f, o, c in lp_cases],
                                     dtype=np.float32))

    # ---- numpy's legacy RandomState: the filter family per seed
    seeds = list(range(0, 200)) + [12345, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**32 + 7,
                                   2**40 + 5, 2**63 + 11, 2**64 - 1]
    rows = []
    for s in seeds:
        lo, hi = s & 0xFFFFFFFF, s >> 32
        if hi == 0:
            np.random.seed(s)
        else:  # numpy refuses integers >= 2**32; Lily takes them as the two-word array seed
            np.random.seed(np.array([lo, hi], dtype=np.int64))
        idx = FAMILIES.index(np.random.choice(FAMILIES))
        rows.append([lo, hi, idx])
    save("np-random-seeds.npy", np.array(rows, dtype=np.int64))
    raw = [np.random.RandomState(42).randint(0, 2**32, size=8, dtype=np.uint32)]
    rs2 = np.random.RandomState(0)
    rs2.seed(np.array([7, 1], dtype=np.int64))
    raw.append(rs2.randint(0, 2**32, size=8, dtype=np.uint32))
    save("np-random-raw.npy", np.array(raw, dtype=np.int64))
    save("np-random-randint.npy", np.random.RandomState(42).randint(0, 10, size=20).astype(np.int64))

    # ---- mel filterbank, non-zero entries
    w = slaney_fb()
    r, c = np.nonzero(w)
    save("mel-fb-nonzero.npy", np.stack([r, c, w[r, c].astype(np.float64)], 1))

    # ---- low-band restore on short signals
    rs3 = np.random.RandomState(99)
    restore = []
    for k, (nn, silent) in enumerate([(300, False), (5000, False), (4096, True), (2048, False)]):
        tt = np.arange(nn) / FS
        cond = (0.4 * np.sin(2 * np.pi * 700 * tt) + 0.2 * np.sin(2 * np.pi * 3100 * tt))
        cond = ss.sosfiltfilt(ss.butter(8, 6000 / 24000, output="sos"), cond,
                              padlen=min(27, nn - 1)).astype(np.float32)
        if silent:
            cond[:] = 0
        out = (0.3 * rs3.standard_normal(nn) + 0.5 * np.sin(2 * np.pi * 650 * tt)).astype(np.float32)
        if k == 1:  # a vocoder output close to the condition: the ratio is not clamped
            out = (0.9 * cond + 1e-4 * rs3.standard_normal(nn)).astype(np.float32)
        want, cut, ratio = audiosr_restore(cond, out)
        restore.append([nn, cut, ratio])
        save("restore-%d-cond.npy" % k, cond)
        save("restore-%d-out.npy" % k, out)
        save("restore-%d-want.npy" % k, want.astype(np.float32))
    save("restore-cases.npy", np.array(restore, dtype=np.float64))
    print("wrote vectors to", HERE)


if __name__ == "__main__":
    main()
