#!/usr/bin/env python3
"""Trains rwkvrt's default model: a small byte-level RWKV-7 on public-domain text.

The model follows the RWKV-7 "Goose" inference math of docs/RWKV-MATH.md exactly (the same
tensors, names and shapes as BlinkDL's checkpoints), so the exported .pth loads in rwkvrt and in
the official package.  Training runs the time mixing in the chunked form (RWKV-MATH.md §4), which
is exact and lets autograd work on a few chunk steps instead of one step per token.

    python3 train.py --data kjv.txt --out rwkv7-kjv-byte.pth --minutes 6

Needs PyTorch and a GPU (it runs on a CPU too, slowly: use --smoke to check it).
"""
import argparse
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

DECAY_SCALE = 0.606531  # e^-1/2: log w = -DECAY_SCALE * sigmoid(...), as in the inference code


def lora_rank(k, p, C):
    return max(32, int(round(k * C ** p / 32)) * 32)


class TimeMix(nn.Module):
    def __init__(self, C, H, layer, L):
        super().__init__()
        self.C, self.H, self.N, self.layer = C, H, C // H, layer
        r0 = layer / max(L - 1, 1)           # 0 -> 1 across layers
        r1 = 1.0 - layer / L                 # 1 -> ~0
        ddd = torch.arange(C, dtype=torch.float32) / C
        mix = lambda e: (1.0 - ddd ** (e * r1)).view(1, 1, C)
        self.x_r, self.x_w, self.x_k = nn.Parameter(mix(0.2)), nn.Parameter(mix(0.9)), nn.Parameter(mix(0.7))
        self.x_v, self.x_a, self.x_g = nn.Parameter(mix(0.7)), nn.Parameter(mix(0.9)), nn.Parameter(mix(0.2))
        decay = -7 + 5 * (torch.arange(C) / (C - 1)) ** (0.85 + 1.0 * r0 ** 0.5)
        Dw, Da, Dv, Dg = lora_rank(1.8, 0.5, C), lora_rank(1.8, 0.5, C), lora_rank(1.3, 0.5, C), lora_rank(0.6, 0.8, C)

        def ortho(rows, cols, scale):
            w = torch.empty(rows, cols)
            nn.init.orthogonal_(w, gain=scale)
            return nn.Parameter(w)

        self.w0 = nn.Parameter((decay + 0.5).view(1, 1, C))
        self.w1, self.w2 = nn.Parameter(torch.zeros(C, Dw)), ortho(Dw, C, 0.1)
        self.a0 = nn.Parameter(torch.zeros(1, 1, C))
        self.a1, self.a2 = nn.Parameter(torch.zeros(C, Da)), ortho(Da, C, 0.1)
        self.v0 = nn.Parameter(torch.ones(1, 1, C))
        self.v1, self.v2 = nn.Parameter(torch.zeros(C, Dv)), ortho(Dv, C, 0.1)
        self.g1, self.g2 = nn.Parameter(torch.zeros(C, Dg)), ortho(Dg, C, 0.1)
        self.k_k = nn.Parameter(torch.full((1, 1, C), 0.85))
        self.k_a = nn.Parameter(torch.ones(1, 1, C))
        self.r_k = nn.Parameter(torch.full((H, self.N), -0.04))
        self.receptance = nn.Linear(C, C, bias=False)
        self.key = nn.Linear(C, C, bias=False)
        self.value = nn.Linear(C, C, bias=False)
        self.output = nn.Linear(C, C, bias=False)
        for lin in (self.receptance, self.key, self.value):
            nn.init.uniform_(lin.weight, -0.5 / C ** 0.5, 0.5 / C ** 0.5)
        nn.init.zeros_(self.output.weight)
        self.ln_x = nn.GroupNorm(H, C, eps=64e-5)
        with torch.no_grad():
            self.ln_x.weight.copy_(((1 + layer) / L) ** 0.7 * torch.ones(C))

    def forward(self, x, v_first, chunk):
        B, T, C = x.shape
        H, N = self.H, self.N
        prev = F.pad(x, (0, 0, 1, -1))  # token shift from a zero state
        d = prev - x
        xr, xw, xk = x + d * self.x_r, x + d * self.x_w, x + d * self.x_k
        xv, xa, xg = x + d * self.x_v, x + d * self.x_a, x + d * self.x_g
        r, k, v = self.receptance(xr), self.key(xk), self.value(xv)
        log_w = -DECAY_SCALE * torch.sigmoid(self.w0 + torch.tanh(xw @ self.w1) @ self.w2)
        a = torch.sigmoid(self.a0 + (xa @ self.a1) @ self.a2)
        g = torch.sigmoid(xg @ self.g1) @ self.g2
        if self.layer == 0:
            v_first = v
        else:
            v = v + (v_first - v) * torch.sigmoid(self.v0 + (xv @ self.v1) @ self.v2)
        kk = F.normalize((k * self.k_k).view(B, T, H, N), dim=-1, p=2.0, eps=1e-12).view(B, T, C)
        k = k * (1 + (a - 1) * self.k_a)
        y = wkv7_chunked(r, log_w, k, v, -kk, kk * a, H, chunk)
        y = self.ln_x(y.view(B * T, C)).view(B, T, C)
        bonus = ((r * k * self.r_k.view(1, 1, C)).view(B, T, H, N).sum(-1, keepdim=True) * v.view(B, T, H, N))
        y = y + bonus.view(B, T, C)
        return self.output(y * g), v_first


def wkv7_chunked(r, log_w, k, v, alpha, beta, H, chunk):
    """y_t = S_t r_t with S_t = S_{t-1}(diag(w_t) + α_t β_tᵀ) + v_t k_tᵀ, state [value][key], from
    S_0 = 0, in chunks (RWKV-MATH.md §4): per chunk a unit-lower-triangular solve for z_t = S_{t-1}α_t.
    Chunks of 16 keep e^{-c} below e^{9.7}, safe in fp32 for the factored products."""
    with torch.autocast(device_type=r.device.type, enabled=False):  # exponents need fp32
        return _wkv7_chunked_fp32(r, log_w, k, v, alpha, beta, H, chunk)


def _wkv7_chunked_fp32(r, log_w, k, v, alpha, beta, H, chunk):
    B, T, C = r.shape
    N = C // H
    shape = lambda t: t.float().reshape(B, T, H, N).transpose(1, 2)  # [B,H,T,N]
    r, log_w, k, v, alpha, beta = map(shape, (r, log_w, k, v, alpha, beta))
    S = torch.zeros(B, H, N, N, device=r.device, dtype=torch.float32)
    ys = []
    strict = torch.tril(torch.ones(chunk, chunk, device=r.device, dtype=torch.bool), -1)
    incl = torch.tril(torch.ones(chunk, chunk, device=r.device, dtype=torch.bool))
    eye = torch.eye(chunk, device=r.device)
    for s0 in range(0, T, chunk):
        sl = slice(s0, min(s0 + chunk, T))
        rc, wc, kc, vc, ac, bc = r[:, :, sl], log_w[:, :, sl], k[:, :, sl], v[:, :, sl], alpha[:, :, sl], beta[:, :, sl]
        L = rc.shape[2]
        c = torch.cumsum(wc, dim=2)                # inclusive
        c_prev = c - wc                            # exclusive
        ec, ecp, emc = torch.exp(c), torch.exp(c_prev), torch.exp(-c)
        a_dec = ac * ecp                           # α_t e^{c_{t-1}}
        r_dec = rc * ec                            # r_t e^{c_t}
        b_inv, k_inv = bc * emc, kc * emc          # β_s e^{-c_s}, k_s e^{-c_s}
        St = S.transpose(-1, -2)                   # [key][value]
        m_ab = (a_dec @ b_inv.transpose(-1, -2)).masked_fill(~strict[:L, :L], 0)
        m_ak = (a_dec @ k_inv.transpose(-1, -2)).masked_fill(~strict[:L, :L], 0)
        z = torch.linalg.solve_triangular(eye[:L, :L] - m_ab, a_dec @ St + m_ak @ vc, upper=False,
                                          unitriangular=True)
        m_rb = (r_dec @ b_inv.transpose(-1, -2)).masked_fill(~incl[:L, :L], 0)
        m_rk = (r_dec @ k_inv.transpose(-1, -2)).masked_fill(~incl[:L, :L], 0)
        ys.append(r_dec @ St + m_rb @ z + m_rk @ vc)
        c_last = c[:, :, -1:]                      # [B,H,1,N]
        tail = torch.exp(c_last - c)               # e^{c_{L-1} - c_s}
        S = S * torch.exp(c_last) + z.transpose(-1, -2) @ (bc * tail) + vc.transpose(-1, -2) @ (kc * tail)
    y = torch.cat(ys, dim=2)                       # [B,H,T,N]
    return y.transpose(1, 2).reshape(B, T, C)


def wkv7_sequential(r, log_w, k, v, alpha, beta, H):
    """The recurrence token by token (the reference the chunked form is checked against)."""
    B, T, C = r.shape
    N = C // H
    S = torch.zeros(B, H, N, N, dtype=torch.float64, device=r.device)
    out = []
    for t in range(T):
        f = lambda x: x[:, t].double().view(B, H, N)
        rt, wt, kt, vt, at, bt = map(f, (r, log_w, k, v, alpha, beta))
        S = S * torch.exp(wt)[:, :, None, :] + (S @ at[..., None]) @ bt[:, :, None, :] + vt[..., None] @ kt[:, :, None, :]
        out.append((S @ rt[..., None]).squeeze(-1).reshape(B, C))
    return torch.stack(out, 1)


class ChannelMix(nn.Module):
    def __init__(self, C, layer, L):
        super().__init__()
        r1 = 1.0 - layer / L
        ddd = torch.arange(C, dtype=torch.float32) / C
        self.x_k = nn.Parameter((1.0 - ddd ** (r1 ** 4)).view(1, 1, C))
        self.key = nn.Linear(C, 4 * C, bias=False)
        self.value = nn.Linear(4 * C, C, bias=False)
        nn.init.orthogonal_(self.key.weight)
        nn.init.zeros_(self.value.weight)

    def forward(self, x):
        prev = F.pad(x, (0, 0, 1, -1))
        k = torch.relu(self.key(x + (prev - x) * self.x_k)) ** 2
        return self.value(k)


class Block(nn.Module):
    def __init__(self, C, H, layer, L):
        super().__init__()
        self.layer = layer
        if layer == 0:
            self.ln0 = nn.LayerNorm(C)
        self.ln1, self.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.att, self.ffn = TimeMix(C, H, layer, L), ChannelMix(C, layer, L)

    def forward(self, x, v_first, chunk):
        if self.layer == 0:
            x = self.ln0(x)
        dx, v_first = self.att(self.ln1(x), v_first, chunk)
        x = x + dx
        return x + self.ffn(self.ln2(x)), v_first


class RWKV7(nn.Module):
    def __init__(self, V, C, L, H):
        super().__init__()
        self.emb = nn.Embedding(V, C)
        nn.init.uniform_(self.emb.weight, -1e-4, 1e-4)
        self.blocks = nn.ModuleList(Block(C, H, i, L) for i in range(L))
        self.ln_out = nn.LayerNorm(C)
        self.head = nn.Linear(C, V, bias=False)
        nn.init.orthogonal_(self.head.weight, gain=0.5 * (V / C) ** 0.5 if V > C else 0.5)

    def forward(self, idx, chunk=16):
        x = self.emb(idx)
        v_first = None
        for b in self.blocks:
            x, v_first = b(x, v_first, chunk)
        return self.head(self.ln_out(x))


def export(model, path, dtype):
    """The checkpoint layout BlinkDL publishes (RWKV-MATH.md §1): a flat dict of tensors."""
    out = {name: p.detach().cpu().to(dtype).contiguous() for name, p in model.state_dict().items()}
    torch.save(out, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="UTF-8 text to train on (bytes are the tokens)")
    ap.add_argument("--out", required=True, help="output .pth")
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--head-size", type=int, default=64)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--lr-final", type=float, default=1e-4)
    ap.add_argument("--minutes", type=float, default=6.0, help="training time budget")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    ap.add_argument("--smoke", action="store_true", help="a few steps of a tiny model, for checking")
    args = ap.parse_args()
    if args.smoke:
        args.layers, args.width, args.ctx, args.batch, args.minutes = 2, 64, 64, 4, 0.1

    torch.manual_seed(args.seed)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True

    # The chunked recurrence must equal the sequential one before anything trains on it.
    g = torch.Generator().manual_seed(0)
    Bt, Tt, Ht, Nt = 2, 37, 2, 16
    rnd = lambda: torch.randn(Bt, Tt, Ht * Nt, generator=g).to(dev)
    r_, k_, v_ = rnd(), rnd(), rnd()
    lw = -DECAY_SCALE * torch.sigmoid(rnd())
    kk = F.normalize(rnd().view(Bt, Tt, Ht, Nt), dim=-1).view(Bt, Tt, -1)
    a_ = torch.sigmoid(rnd())
    want = wkv7_sequential(r_, lw, k_, v_, -kk, kk * a_, Ht)
    got = wkv7_chunked(r_, lw, k_, v_, -kk, kk * a_, Ht, 16).double()
    err = (got - want).abs().max().item()
    print(f"chunked vs sequential WKV-7: max abs error {err:.2e}", flush=True)
    assert err < 1e-3, "chunked WKV-7 disagrees with the recurrence"

    data = torch.frombuffer(bytearray(open(args.data, "rb").read()), dtype=torch.uint8).long()
    split = int(len(data) * 0.97)
    train, val = data[:split], data[split:]
    print(f"data: {len(data)} bytes, train {len(train)}, validation {len(val)}", flush=True)

    V, C, L, H = 256, args.width, args.layers, args.width // args.head_size
    model = RWKV7(V, C, L, H).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: RWKV-7 L{L} C{C} H{H} vocab {V}, {n_params / 1e6:.2f} M parameters", flush=True)
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (decay if p.dim() >= 2 and "emb" not in n and not n.endswith("r_k") else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.99), eps=1e-8)

    def batch(src, n):
        ix = torch.randint(len(src) - args.ctx - 1, (n,))
        x = torch.stack([src[i:i + args.ctx] for i in ix]).to(dev)
        y = torch.stack([src[i + 1:i + 1 + args.ctx] for i in ix]).to(dev)
        return x, y

    @torch.no_grad()
    def evaluate():
        model.eval()
        losses = []
        gen = torch.Generator().manual_seed(123)
        for _ in range(8):
            ix = torch.randint(len(val) - args.ctx - 1, (args.batch,), generator=gen)
            x = torch.stack([val[i:i + args.ctx] for i in ix]).to(dev)
            y = torch.stack([val[i + 1:i + 1 + args.ctx] for i in ix]).to(dev)
            losses.append(F.cross_entropy(model(x).view(-1, V), y.view(-1)).item())
        model.train()
        return sum(losses) / len(losses)

    budget = args.minutes * 60
    start = time.time()
    step = 0
    while True:
        elapsed = time.time() - start
        if elapsed > budget:
            break
        frac = min(1.0, elapsed / budget)
        warm = min(1.0, (step + 1) / 100)
        lr = warm * (args.lr_final + 0.5 * (args.lr - args.lr_final) * (1 + math.cos(math.pi * frac)))
        for grp in opt.param_groups:
            grp["lr"] = lr
        x, y = batch(train, args.batch)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=dev == "cuda"):
            logits = model(x)
        loss = F.cross_entropy(logits.float().view(-1, V), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0:
            print(f"step {step} t={elapsed:.0f}s lr={lr:.2e} loss={loss.item():.4f} "
                  f"({loss.item() / math.log(2):.3f} bits/byte)", flush=True)
        step += 1
    val_loss = evaluate()
    tokens = step * args.batch * args.ctx
    print(f"done: {step} steps, {tokens / 1e6:.1f} M tokens in {time.time() - start:.0f}s; "
          f"validation loss {val_loss:.4f} ({val_loss / math.log(2):.3f} bits/byte)", flush=True)

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype]
    export(model, args.out, dtype)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)", flush=True)

    # A sample from the trained model, greedy-ish, to read in the log.
    model.eval()
    with torch.no_grad():
        ctx = torch.tensor([list(b"And the LORD said unto ")], device=dev)
        for _ in range(200):
            logits = model(ctx[:, -args.ctx:])[0, -1].float()
            probs = torch.softmax(logits / 0.7, -1)
            ctx = torch.cat([ctx, torch.multinomial(probs, 1)[None]], 1)
        print("sample:", bytes(ctx[0].tolist()).decode("utf-8", "replace"), flush=True)


if __name__ == "__main__":
    main()
