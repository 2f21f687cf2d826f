#!/usr/bin/python3
"""tests/train/make-reference.py - PyTorch reference for two UNet training steps of Lily.

An independent implementation of what engine/train/stage-unet.c does, written from AudioSR's
model code as spec.md describes it (openaimodel.UNetModel, attention.SpatialTransformer,
ddpm.p_losses with v-parameterization, torch.optim.AdamW, clip_grad_norm_). It shares no code
with Lily: the network is rebuilt here in PyTorch with AudioSR's module names, so its
state_dict keys are AudioSR's keys and the weights load by name.

How the committed files in tests/train/data/ were made (Debian 12, python3-torch 1.13.1):

    lily-convert --quiet --random 11 tiny /tmp/tiny11.safetensors
    /usr/bin/python3 tests/train/make-reference.py --check-audiosr ../shared/audiosr \\
        /tmp/tiny11.safetensors tests/train/data

--check-audiosr first proves this PyTorch UNet is AudioSR's: it loads tiny-a.bin and compares
one forward with ref-a's unet_out_cond (AudioSR's own output). Then, on the random tiny model:
two steps of AdamW (lr 1e-3, betas 0.9/0.999, eps 1e-8, weight decay 0.01, global-norm clip 1.0)
on two batches of 2 latents [16, 8, 32] (the latent of a 0.64 s segment) with the condition
already scaled, timesteps and noise drawn here (numpy, seed 2024) and written as inputs. The
outputs are small: the two losses, per-tensor gradient norms after step 1 and weight norms
after step 2, and 8 sampled elements of every UNet tensor's gradient (step 1) and weights
(step 2) at indices (j * 7919 + k * 13) % numel for tensor k (names sorted) and j < 8.
tests/train/test-reference.c rebuilds the same model (seed 11), checks a weight checksum
so a change of the random initialiser cannot go unnoticed, and compares.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(2)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            if info["dtype"] != "F32":
                continue
            a, b = info["data_offsets"]
            f.seek(base + a)
            out[name] = np.frombuffer(f.read(b - a), dtype="<f4").reshape(info["shape"]).copy()
        return out, header.get("__metadata__", {})


# ---- AudioSR's UNet, rebuilt (spec.md 4.1) -------------------------------------------------
def timestep_embedding(t, dim):
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(0, half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, emb):
        super().__init__()
        self.in_layers = nn.Sequential(nn.GroupNorm(32, cin, eps=1e-5), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb, cout))
        self.out_layers = nn.Sequential(nn.GroupNorm(32, cout, eps=1e-5), nn.SiLU(), nn.Dropout(0.0),
                                        nn.Conv2d(cout, cout, 3, padding=1))
        self.skip_connection = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x, emb):
        h = self.in_layers(x)
        h = h + self.emb_layers(emb)[:, :, None, None]
        return self.skip_connection(x) + self.out_layers(h)


class CrossAttention(nn.Module):
    def __init__(self, dim, heads, dim_head):
        super().__init__()
        inner = heads * dim_head
        self.heads, self.scale = heads, dim_head ** -0.5
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(dim, inner, bias=False)
        self.to_v = nn.Linear(dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(0.0))

    def forward(self, x):
        b, n, _ = x.shape
        h = self.heads

        def split(t):  # 'b n (h d) -> (b h) n d'
            return t.reshape(b, n, h, -1).permute(0, 2, 1, 3).reshape(b * h, n, -1)

        q, k, v = split(self.to_q(x)), split(self.to_k(x)), split(self.to_v(x))
        sim = torch.einsum("b i d, b j d -> b i j", q, k) * self.scale
        out = torch.einsum("b i j, b j d -> b i d", sim.softmax(dim=-1), v)
        out = out.reshape(b, h, n, -1).permute(0, 2, 1, 3).reshape(b, n, -1)
        return self.to_out(out)


class GEGLU(nn.Module):
    def __init__(self, dim, inner):
        super().__init__()
        self.proj = nn.Linear(dim, inner * 2)

    def forward(self, x):
        x, gate = self.proj(x).chunk(2, dim=-1)
        return x * F.gelu(gate)


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim, heads, dim_head):
        super().__init__()
        self.attn1 = CrossAttention(dim, heads, dim_head)
        self.ff = nn.Module()
        self.ff.net = nn.Sequential(GEGLU(dim, 4 * dim), nn.Dropout(0.0), nn.Linear(4 * dim, dim))
        self.attn2 = CrossAttention(dim, heads, dim_head)  # no context: self-attention
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, x):
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x)) + x
        return self.ff.net(self.norm3(x)) + x


class SpatialTransformer(nn.Module):
    def __init__(self, c, heads, dim_head):
        super().__init__()
        inner = heads * dim_head
        self.norm = nn.GroupNorm(32, c, eps=1e-6)
        self.proj_in = nn.Conv2d(c, inner, 1)
        self.transformer_blocks = nn.ModuleList([BasicTransformerBlock(inner, heads, dim_head)])
        self.proj_out = nn.Conv2d(inner, c, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        y = self.proj_in(self.norm(x))
        y = y.reshape(b, -1, h * w).permute(0, 2, 1)  # 'b c h w -> b (h w) c'
        for blk in self.transformer_blocks:
            y = blk(y)
        y = y.permute(0, 2, 1).reshape(b, -1, h, w)
        return self.proj_out(y) + x


class Downsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.op = nn.Conv2d(c, c, 3, stride=2, padding=1)

    def forward(self, x):
        return self.op(x)


class Upsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class Seq(nn.ModuleList):  # TimestepEmbedSequential
    def forward(self, x, emb):
        for m in self:
            x = m(x, emb) if isinstance(m, ResBlock) else m(x)
        return x


class UNet(nn.Module):
    def __init__(self, cin=32, cout=16, mc=32, mult=(1, 1, 1, 2), nres=2, attn=(8, 4, 2), head_ch=32):
        super().__init__()
        ted = 4 * mc
        self.mc = mc
        self.time_embed = nn.Sequential(nn.Linear(mc, ted), nn.SiLU(), nn.Linear(ted, ted))

        def point(ch):  # extra_sa_layer: two self-attention transformers per attention point
            return [SpatialTransformer(ch, ch // head_ch, head_ch), SpatialTransformer(ch, ch // head_ch, head_ch)]

        self.input_blocks = nn.ModuleList([Seq([nn.Conv2d(cin, mc, 3, padding=1)])])
        chans, ch, ds = [mc], mc, 1
        for level, m in enumerate(mult):
            for _ in range(nres):
                layers = [ResBlock(ch, m * mc, ted)]
                ch = m * mc
                if ds in attn:
                    layers += point(ch)
                self.input_blocks.append(Seq(layers))
                chans.append(ch)
            if level != len(mult) - 1:
                self.input_blocks.append(Seq([Downsample(ch)]))
                chans.append(ch)
                ds *= 2
        self.middle_block = Seq([ResBlock(ch, ch, ted)] + point(ch) + [ResBlock(ch, ch, ted)])
        self.output_blocks = nn.ModuleList()
        for level, m in list(enumerate(mult))[::-1]:
            for i in range(nres + 1):
                layers = [ResBlock(ch + chans.pop(), mc * m, ted)]
                ch = mc * m
                if ds in attn:
                    layers += point(ch)
                if level and i == nres:
                    layers.append(Upsample(ch))
                    ds //= 2
                self.output_blocks.append(Seq(layers))
        self.out = nn.Sequential(nn.GroupNorm(32, mc, eps=1e-5), nn.SiLU(), nn.Conv2d(mc, cout, 3, padding=1))

    def forward(self, x, t):
        emb = self.time_embed(timestep_embedding(t, self.mc))
        hs, h = [], x
        for m in self.input_blocks:
            h = m(h, emb)
            hs.append(h)
        h = self.middle_block(h, emb)
        for m in self.output_blocks:
            h = m(torch.cat([h, hs.pop()], dim=1), emb)
        return self.out(h)


PREFIX = "model.diffusion_model."


def load_unet(weights):
    net = UNet()
    sd = {k[len(PREFIX):]: torch.from_numpy(v) for k, v in weights.items() if k.startswith(PREFIX)}
    missing, unexpected = net.load_state_dict(sd, strict=True), None
    return net


def cosine_alphas_cumprod(T=1000, s=0.008):
    # make_beta_schedule("cosine") in float64, betas unclipped (spec.md 3)
    steps = np.arange(T + 1, dtype=np.float64) / T + s
    alphas = np.cos(steps / (1 + s) * np.pi / 2) ** 2
    alphas = alphas / alphas[0]
    betas = 1 - alphas[1:] / alphas[:-1]
    return np.cumprod(1.0 - betas)


def check_audiosr(ref_dir):
    """The rebuilt UNet against AudioSR's own forward on tiny-a (ref-a/unet_out_cond)."""
    sd = torch.load(os.path.join(ref_dir, "tiny-a.bin"), map_location="cpu")["state_dict"]
    net = load_unet({k: v.numpy() for k, v in sd.items() if k.startswith(PREFIX)})
    ld = lambda n: torch.from_numpy(np.load(os.path.join(ref_dir, "ref-a", n + ".npy")))
    x = torch.cat([ld("unet_x_t"), ld("cond_latent_scaled")], dim=1)
    with torch.no_grad():
        out = net(x, ld("unet_t")).numpy()
    ref = np.load(os.path.join(ref_dir, "ref-a", "unet_out_cond.npy"))
    rel = np.abs(out - ref).max() / np.abs(ref).max()
    print(f"rebuilt UNet vs AudioSR (ref-a unet_out_cond): max rel error {rel:.2e}")
    if rel > 1e-4:
        sys.exit("the rebuilt UNet does not match AudioSR")


def sample_idx(k, n):
    return [(j * 7919 + k * 13) % n for j in range(8)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check-audiosr", metavar="DIR")
    ap.add_argument("model")
    ap.add_argument("out")
    a = ap.parse_args()
    if a.check_audiosr:
        check_audiosr(a.check_audiosr)
    weights, meta = read_safetensors(a.model)
    net = load_unet(weights)
    names = sorted(n for n, _ in net.named_parameters())
    params = dict(net.named_parameters())
    checksum = sum(float(np.sum(weights[PREFIX + n], dtype=np.float64)) for n in names)

    rng = np.random.default_rng(2024)
    shape = (2, 16, 8, 32)
    batches = []
    for _ in range(2):
        batches.append(dict(x0=rng.standard_normal(shape).astype(np.float32),
                            cond=(0.7 * rng.standard_normal(shape)).astype(np.float32),
                            noise=rng.standard_normal(shape).astype(np.float32),
                            t=rng.integers(0, 1000, size=2).astype(np.int64)))
    ac = cosine_alphas_cumprod()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    losses, grad_sample, grad_norm = [], None, None
    for step, b in enumerate(batches):
        opt.zero_grad()
        t = torch.from_numpy(b["t"])
        sa = torch.from_numpy(np.sqrt(ac[b["t"]]).astype(np.float32))[:, None, None, None]
        s1a = torch.from_numpy(np.sqrt(1 - ac[b["t"]]).astype(np.float32))[:, None, None, None]
        x0, noise, cond = (torch.from_numpy(b[k]) for k in ("x0", "noise", "cond"))
        xt = x0 * sa + noise * s1a
        v = noise * sa - x0 * s1a
        loss = ((net(torch.cat([xt, cond], dim=1), t) - v) ** 2).mean()
        loss.backward()
        if step == 0:
            grad_sample = np.array([params[n].grad.numpy().ravel()[sample_idx(k, params[n].numel())]
                                    for k, n in enumerate(names)], dtype=np.float32)
            grad_norm = np.array([params[n].grad.norm().item() for n in names], dtype=np.float32)
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        print(f"step {step + 1}: loss {loss.item():.7f}")
    w_sample = np.array([params[n].detach().numpy().ravel()[sample_idx(k, params[n].numel())]
                         for k, n in enumerate(names)], dtype=np.float32)
    w_norm = np.array([params[n].detach().norm().item() for n in names], dtype=np.float32)

    os.makedirs(a.out, exist_ok=True)
    save = lambda n, arr: np.save(os.path.join(a.out, n + ".npy"), arr)
    for i, b in enumerate(batches):
        for k in ("x0", "cond", "noise"):
            save(f"ref-step{i + 1}-{k}", b[k])
        save(f"ref-step{i + 1}-t", b["t"].astype(np.int32))
    save("ref-losses", np.array(losses, dtype=np.float64))
    save("ref-grad-sample", grad_sample)
    save("ref-grad-norm", grad_norm)
    save("ref-weight-sample", w_sample)
    save("ref-weight-norm", w_norm)
    save("ref-init-checksum", np.array([checksum], dtype=np.float64))
    with open(os.path.join(a.out, "ref-names.txt"), "w") as f:
        f.write("".join(PREFIX + n + "\n" for n in names))
    print(f"{len(names)} tensors; initial weight checksum {checksum:.9g}")


if __name__ == "__main__":
    main()
