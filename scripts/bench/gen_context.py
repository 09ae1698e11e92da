#!/usr/bin/env python3
"""Generates issue 4's benchmark context: 50,000 files in 200 folders (200-4,000 random bytes each),
a 190 MB node_modules that .dockerignore excludes, and a `FROM scratch` + `COPY . /ctx/` Dockerfile.
Deterministic (seeded), so lighter and docker build the same bytes."""
import os
import random
import sys

def main(root, files=50_000, folders=200, node_mb=190):
    rnd = random.Random(42)
    os.makedirs(root, exist_ok=True)
    per = files // folders
    for d in range(folders):
        dp = os.path.join(root, "src", f"d{d:03}")
        os.makedirs(dp, exist_ok=True)
        for f in range(per):
            with open(os.path.join(dp, f"f{f:04}.txt"), "wb") as fh:
                fh.write(rnd.randbytes(rnd.randint(200, 4000)))
    nm = os.path.join(root, "node_modules")
    chunk = rnd.randbytes(1 << 20)
    for i in range(node_mb // 5):
        pd = os.path.join(nm, f"pkg{i:03}")
        os.makedirs(pd, exist_ok=True)
        with open(os.path.join(pd, "blob.bin"), "wb") as fh:
            for _ in range(5):
                fh.write(chunk)
    with open(os.path.join(root, ".dockerignore"), "w") as fh:
        fh.write("node_modules\n")
    with open(os.path.join(root, "Dockerfile"), "w") as fh:
        fh.write("FROM scratch\nCOPY . /ctx/\n")

if __name__ == "__main__":
    main(sys.argv[1])
