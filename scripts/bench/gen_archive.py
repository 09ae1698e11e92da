#!/usr/bin/env python3
"""Writes a docker-archive (docker save's legacy layout) of LAYERS layers, about SIZE_MB in all, for
the analyze benchmark: many small files and a few large ones per layer, some paths rewritten by later
layers and some deleted (whiteouts), so dive and lighter both have work to do. Deterministic.
Usage: gen_archive.py OUT.tar [SIZE_MB] [LAYERS]"""
import hashlib, io, json, os, sys, tarfile

out = sys.argv[1]
size_mb = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
nlayers = int(sys.argv[3]) if len(sys.argv) > 3 else 3
chunk = bytes(range(256)) * 4096  # 1 MiB


def data(n):
    while n > 0:
        k = min(n, len(chunk))
        yield chunk[:k]
        n -= k


class Gen(io.RawIOBase):
    def __init__(self, n):
        self.it, self.buf, self.left = data(n), b"", n

    def readable(self):
        return True

    def readinto(self, b):
        if not self.buf:
            self.buf = next(self.it, b"")
        n = min(len(b), len(self.buf))
        b[:n] = self.buf[:n]
        self.buf = self.buf[n:]
        return n


def layer(i, path):
    budget = size_mb * (1 << 20) // nlayers
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as t:
        def add(name, n):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = n, 0o644, 1700000000
            t.addfile(ti, io.BufferedReader(Gen(n)) if n else None)
        for d in range(20):
            ti = tarfile.TarInfo(f"l{i}/d{d}")
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 1700000000
            t.addfile(ti)
        # 10,000 small files (4 KiB), then the rest of the budget in 8 large ones.
        for f in range(10000):
            add(f"l{i}/d{f % 20}/f{f}", 4096)
        big = (budget - 10000 * 4096) // 8
        for f in range(8):
            add(f"l{i}/big{f}", big)
        if i > 0:
            add("l0/d0/f0", 8192)  # a rewrite of a file of the first layer
            ti = tarfile.TarInfo("l0/d1/.wh.f1")
            ti.mtime = 1700000000
            t.addfile(ti)


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


tmp = out + ".d"
os.makedirs(tmp, exist_ok=True)
layers = []
for i in range(nlayers):
    p = os.path.join(tmp, f"layer{i}.tar")
    layer(i, p)
    layers.append((f"{sha(p)}/layer.tar", p, sha(p)))
cfg = json.dumps({
    "architecture": "amd64", "os": "linux",
    "config": {"Cmd": ["/bin/sh"]},
    "rootfs": {"type": "layers", "diff_ids": [f"sha256:{h}" for _, _, h in layers]},
    "history": [{"created_by": f"layer {i}"} for i in range(nlayers)],
}).encode()
cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"
manifest = json.dumps([{"Config": cfg_name, "RepoTags": ["bench:1"], "Layers": [n for n, _, _ in layers]}]).encode()
with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as t:
    for name, p, _ in layers:
        t.add(p, arcname=name)
    for name, b in ((cfg_name, cfg), ("manifest.json", manifest)):
        ti = tarfile.TarInfo(name)
        ti.size, ti.mtime = len(b), 1700000000
        t.addfile(ti, io.BytesIO(b))
for _, p, _ in layers:
    os.remove(p)
os.rmdir(tmp)
