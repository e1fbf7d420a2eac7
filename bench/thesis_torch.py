"""The thesis stages on VGG16 in PyTorch/NumPy, for comparison with `convpress compress` on the same file:
GAP fold of fc6, L1-norm filter pruning to the same kept counts convpress chose (read from its report JSON),
truncated SVD of the FCs at rank 256 (the same randomized range finder as convpress, 2 power iterations, written
with torch matmul/QR/SVD; torch.svd_lowrank takes 84 s for fc7 alone here),
1-D k-means (linear initialisation, Lloyd's iterations on all weights, centres rounded to fp16, reassigned),
then the result saved with numpy (indices as uint8, centres as float16; no bit packing or entropy coding).
The whole model is held in memory, as such a script usually does.
Usage: /usr/bin/python3 thesis_torch.py VGG16_V1.caffemodel CONVPRESS_REPORT.json OUT.npz
       /usr/bin/python3 thesis_torch.py VGG16_V1.caffemodel --cluster8 OUT.npz   (the cluster8 recipe's peer:
       8-bit k-means of every weight, no other stage)
"""
import json, struct, sys, time
import numpy as np
import torch

t0 = time.time()
src, report_path, out = sys.argv[1:4]
cluster8 = report_path == "--cluster8"
buf = memoryview(open(src, "rb").read())

def varint(b, p):
    v = s = 0
    while True:
        c = b[p]; p += 1
        v |= (c & 0x7F) << s; s += 7
        if c < 0x80:
            return v, p

def fields(b, p, end):
    while p < end:
        key, p = varint(b, p)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, p = varint(b, p); yield f, v
        elif wt == 2:
            n, p = varint(b, p); yield f, (p, p + n); p += n
        elif wt == 5:
            yield f, b[p:p + 4]; p += 4
        elif wt == 1:
            yield f, b[p:p + 8]; p += 8

# V1 caffemodel: NetParameter.layers (2) -> V1LayerParameter {name 4, blobs 6 -> BlobProto {num..width 1-4, data 5}}
params = {}
for f, v in fields(buf, 0, len(buf)):
    if f != 2:
        continue
    name, blobs = None, []
    for g, u in fields(buf, *v):
        if g == 4:
            name = bytes(buf[u[0]:u[1]]).decode()
        elif g == 6:
            dims, data = [0, 0, 0, 0], None
            for h, x in fields(buf, *u):
                if 1 <= h <= 4:
                    dims[h - 1] = x
                elif h == 5:
                    data = np.frombuffer(buf[x[0]:x[1]], dtype="<f4")
            blobs.append((dims, data))
    if blobs:
        w = blobs[0][1]
        if name.startswith("conv"):
            w = w.reshape(blobs[0][0])
        else:
            w = w.reshape(blobs[0][0][2], blobs[0][0][3])
        params[name] = [torch.from_numpy(w.copy()), torch.from_numpy(blobs[1][1].copy())]
t_load = time.time()

def kmeans(x, bits, iters=50):
    x = x.flatten()
    k = 2 ** bits
    c = torch.linspace(float(x.min()), float(x.max()), k)
    for _ in range(iters):
        idx = torch.bucketize(x, (c[1:] + c[:-1]) / 2)
        sums = torch.zeros(k).index_add_(0, idx, x)
        cnt = torch.zeros(k).index_add_(0, idx, torch.ones_like(x))
        new = torch.where(cnt > 0, sums / cnt.clamp(min=1), c)
        new, _ = torch.sort(new)
        if torch.allclose(new, c):
            break
        c = new
    c = torch.unique(c.half().float())
    idx = torch.bucketize(x, (c[1:] + c[:-1]) / 2)
    return idx.to(torch.uint8).numpy(), c.half().numpy()

if cluster8:
    saved = {}
    for name, (w, b) in params.items():
        saved[f"{name}.idx"], saved[f"{name}.centres"] = kmeans(w, 8)
        saved[f"{name}.bias"] = b.half().numpy()
    t_cluster = time.time()
    np.savez(out, **saved)
    print(f"load {t_load - t0:.1f} s, k-means {t_cluster - t_load:.1f} s, save {time.time() - t_cluster:.1f} s")
    sys.exit(0)

# 1. GAP: fc6 [4096, 512*7*7] -> [4096, 512], summing each channel's 49 weights
w6 = params["fc6"][0]
params["fc6"][0] = w6.reshape(w6.shape[0], 512, 49).sum(-1)

# 2. Prune to convpress's kept counts, keeping the filters of largest L1 norm; consumers lose the inputs
report = json.load(open(report_path))
after = {l["name"]: l["shapesAfter"] for l in report["layers"]}
order = [n for n in params]
for i, name in enumerate(order[:-1]):
    w, b = params[name]
    keep_n = after[name][-1][0]  # output rows of the last weight the layer became
    if keep_n >= w.shape[0]:
        continue
    l1 = w.reshape(w.shape[0], -1).abs().sum(1)
    keep = torch.sort(torch.topk(l1, keep_n).indices).values
    params[name] = [w[keep], b[keep]]
    nxt = order[i + 1]
    params[nxt][0] = params[nxt][0][:, keep]
t_prune = time.time()

# 3. Truncated SVD of the FCs at rank 256
factors = {}
for name in ("fc6", "fc7", "fc8"):
    w = params[name][0]
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(w @ torch.randn(w.shape[1], 266, generator=g))
    for _ in range(2):
        # w.T @ q (any transposed operand) takes a 34 s slow path in this torch build: keep operands contiguous
        z, _ = torch.linalg.qr((q.T.contiguous() @ w).T.contiguous())
        q, _ = torch.linalg.qr(w @ z)
    ub, s, vt = torch.linalg.svd(q.T.contiguous() @ w, full_matrices=False)
    u = q @ ub
    r = torch.sqrt(s[:256])
    factors[name] = (vt[:256] * r[:, None], u[:, :256] * r[None, :])
t_svd = time.time()

# 4. k-means with fp16 centres: 5 bits for convs, 4 for the FC factors (kmeans above)
saved = {}
for name, (w, b) in params.items():
    parts = factors.get(name, (w,))
    for j, p in enumerate(parts):
        idx, c = kmeans(p, 5 if name.startswith("conv") else 4)
        saved[f"{name}.{j}.idx"], saved[f"{name}.{j}.centres"] = idx, c
    saved[f"{name}.bias"] = b.half().numpy()
t_cluster = time.time()
np.savez(out, **saved)
t_end = time.time()
print(f"load {t_load - t0:.1f} s, GAP+prune {t_prune - t_load:.1f} s, TSVD {t_svd - t_prune:.1f} s, "
      f"k-means {t_cluster - t_svd:.1f} s, save {t_end - t_cluster:.1f} s; total {t_end - t0:.1f} s")
