#!/usr/bin/env python3
"""Generates the hostile-input corpus next to this file, deterministically (python3 stdlib only).

    python3 crates/lighter/tests/hostile/make.py            # (re)writes the corpus files
    python3 crates/lighter/tests/hostile/make.py --check    # fails if a file would change

Every committed file is under 200 KB. Inputs that would be bigger (a 10 MB Dockerfile line, a
100,000-line continuation, a 1 MB .dockerignore pattern, a build context of a few hundred files)
are recipes in cases.json that run.py materialises at test time (`materialise()` below).

Layer cases are whole docker-archives (what `lighter load` reads) whose one layer is hostile;
the config's diffID is the real sha256 of the (uncompressed) layer, so the archive itself is
well formed and only the layer is hostile (except the cases about the archive itself).

Bomb sizes: a gzip member cannot beat ~1030:1 on zeros, so the plain gzip bomb is 150 MiB of
zeros (~150 KB committed). The >1 GiB gzip bomb is nested instead: a gzip'd docker-archive that
contains a gzip'd 1 GiB layer (lighter decompresses both). The zstd bomb is written by hand as
RLE blocks (4 bytes per 128 KiB of output), 1 GiB in ~33 KB.
"""

import gzip
import hashlib
import io
import json
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
MAX_FILE = 200 * 1024
MiB = 1 << 20
GiB = 1 << 30

# ---------------------------------------------------------------------------------------------
# tar headers, by hand: the corpus needs names and fields tarfile would clean or refuse.


def _octal(n, width):
    """A NUL-terminated octal field, or GNU base-256 when it does not fit."""
    s = b"%o" % n
    if len(s) <= width - 1:
        return s.rjust(width - 1, b"0") + b"\0"
    out = bytearray(width)
    out[0] = 0x80
    for i in range(width - 1, 0, -1):
        out[i] = n & 0xFF
        n >>= 8
    return bytes(out)


def header(name, size=0, typeflag=b"0", linkname=b"", mode=0o644, uid=0, gid=0, mtime=0,
           devmajor=0, devminor=0, gnu=False, raw=None):
    """One 512-byte header. `name`/`linkname` are bytes written raw (truncated to 100).
    `raw` maps byte offsets to bytes written over the header before the checksum."""
    if isinstance(name, str):
        name = name.encode()
    if isinstance(linkname, str):
        linkname = linkname.encode()
    h = bytearray(512)
    h[0:100] = name[:100].ljust(100, b"\0")
    h[100:108] = _octal(mode, 8)
    h[108:116] = _octal(uid, 8)
    h[116:124] = _octal(gid, 8)
    h[124:136] = _octal(size, 12)
    h[136:148] = _octal(mtime, 12)
    h[156:157] = typeflag
    h[157:257] = linkname[:100].ljust(100, b"\0")
    if gnu:
        h[257:265] = b"ustar  \0"
    else:
        h[257:263] = b"ustar\0"
        h[263:265] = b"00"
    h[329:337] = _octal(devmajor, 8)
    h[337:345] = _octal(devminor, 8)
    for off, b in (raw or {}).items():
        h[off:off + len(b)] = b
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def pad(data):
    return data + b"\0" * (-len(data) % 512)


def member(name, data=b"", **kw):
    return header(name, size=len(data), **kw) + pad(data)


def pax_record(key, value):
    if isinstance(value, str):
        value = value.encode()
    body = b" " + key.encode() + b"=" + value + b"\n"
    n = len(body) + 1
    while len(str(n).encode()) + len(body) != n:
        n = len(str(n).encode()) + len(body)
    return str(n).encode() + body


def pax(records, name="PaxHeader"):
    data = b"".join(pax_record(k, v) for k, v in records)
    return header(name, size=len(data), typeflag=b"x") + pad(data)


END = b"\0" * 1024


def tar(*members, end=True):
    return b"".join(members) + (END if end else b"")


def d(name, mode=0o755):
    return member(name, typeflag=b"5", mode=mode)


def f(name, data=b"x\n", mode=0o644):
    return member(name, data, mode=mode)


# ---------------------------------------------------------------------------------------------
# compression


def gz(data, level=9):
    """Deterministic gzip: no name, mtime 0."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=level, mtime=0) as g:
        g.write(data)
    return buf.getvalue()


class GzStream:
    """Streams a gzip member (mtime 0, no name) while hashing the uncompressed bytes."""

    def __init__(self, level=9):
        self.c = zlib.compressobj(level, zlib.DEFLATED, -15, 9)
        self.out = [b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"]
        self.crc = 0
        self.n = 0
        self.sha = hashlib.sha256()

    def write(self, b):
        self.out.append(self.c.compress(b))
        self.crc = zlib.crc32(b, self.crc)
        self.n += len(b)
        self.sha.update(b)

    def zeros(self, n):
        chunk = b"\0" * MiB
        while n:
            k = min(n, len(chunk))
            self.write(chunk[:k])
            n -= k

    def finish(self):
        self.out.append(self.c.flush())
        self.out.append(struct.pack("<II", self.crc & 0xFFFFFFFF, self.n & 0xFFFFFFFF))
        return b"".join(self.out), "sha256:" + self.sha.hexdigest()


def zstd_rle_bomb(prefix, zeros):
    """A zstd frame by hand: `prefix` as raw blocks, then `zeros` zero bytes as RLE blocks.
    Frame header: magic, descriptor 0x00 (no content size, no checksum, not single-segment),
    window descriptor 0x38 (2^17 = 128 KiB window, the largest block). Each block header is
    3 bytes little endian: bit 0 last block, bits 1-2 type (0 raw, 1 RLE), bits 3.. size."""
    B = 128 * 1024
    parts = []
    for i in range(0, len(prefix), B):
        parts.append((0, prefix[i:i + B]))
    n = zeros
    while n:
        k = min(n, B)
        parts.append((1, k))
        n -= k
    out = [b"\x28\xb5\x2f\xfd", b"\x00", b"\x38"]
    for i, (kind, v) in enumerate(parts):
        last = 1 if i == len(parts) - 1 else 0
        if kind == 0:
            hdr = last | (0 << 1) | (len(v) << 3)
            out.append(struct.pack("<I", hdr)[:3] + v)
        else:
            hdr = last | (1 << 1) | (v << 3)
            out.append(struct.pack("<I", hdr)[:3] + b"\0")
    return b"".join(out)


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def zeros_sha(prefix, n, suffix=b""):
    h = hashlib.sha256(prefix)
    chunk = b"\0" * MiB
    while n:
        k = min(n, len(chunk))
        h.update(chunk[:k])
        n -= k
    h.update(suffix)
    return "sha256:" + h.hexdigest()


# ---------------------------------------------------------------------------------------------
# archives


def config_json(diff_ids, extra=None):
    c = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/x"]},
        "created": "1970-01-01T00:00:00Z",
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "hostile corpus"}
                    for _ in diff_ids],
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
    }
    if extra:
        c.update(extra)
    return json.dumps(c, sort_keys=True, separators=(",", ":")).encode()


def docker_archive(case, layer, diff_id=None, config=None, manifest=None, extra=()):
    """A legacy docker-save archive: manifest.json, <hex>.json config, <n>/layer.tar."""
    if diff_id is None:
        diff_id = sha(layer)
    cfg = config if config is not None else config_json([diff_id])
    cfg_name = sha(cfg)[7:] + ".json"
    if manifest is None:
        manifest = json.dumps([{"Config": cfg_name, "RepoTags": ["hostile/%s:latest" % case],
                                "Layers": ["layer0/layer.tar"]}]).encode()
    return tar(
        member("manifest.json", manifest),
        member(cfg_name, cfg),
        d("layer0/"),
        member("layer0/layer.tar", layer),
        *extra,
    )


def oci_archive(case, index, blobs):
    """An OCI layout as a tar: oci-layout, index.json, blobs/sha256/<hex> for each blob."""
    ms = [member("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
          member("index.json", index), d("blobs/"), d("blobs/sha256/")]
    for b in blobs:
        ms.append(member("blobs/sha256/" + sha(b)[7:], b))
    return tar(*ms)


def oci_image(case, layer_blob, layer_mt="application/vnd.oci.image.layer.v1.tar+gzip",
              config_mt="application/vnd.oci.image.config.v1+json",
              manifest_mt="application/vnd.oci.image.manifest.v1+json",
              index_entry_mt=None, layer_size=None, config_size=None, diff_id=None):
    if diff_id is None:
        raw = zlib.decompress(layer_blob, 47) if layer_blob[:2] == b"\x1f\x8b" else layer_blob
        diff_id = sha(raw)
    cfg = config_json([diff_id])
    man = json.dumps({
        "schemaVersion": 2, "mediaType": manifest_mt,
        "config": {"mediaType": config_mt, "digest": sha(cfg),
                   "size": len(cfg) if config_size is None else config_size},
        "layers": [{"mediaType": layer_mt, "digest": sha(layer_blob),
                    "size": len(layer_blob) if layer_size is None else layer_size}],
    }, sort_keys=True).encode()
    idx = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": index_entry_mt or manifest_mt, "digest": sha(man),
                       "size": len(man),
                       "annotations": {"io.containerd.image.name": "hostile/%s:latest" % case}}],
    }, sort_keys=True).encode()
    return oci_archive(case, idx, [cfg, man, layer_blob])


# ---------------------------------------------------------------------------------------------
# the cases


def layer_cases():
    """name -> (archive bytes, file suffix). Each archive is a docker-archive with one layer."""
    out = {}

    def add(name, layer, **kw):
        out["layer-" + name] = (docker_archive(name, layer, **kw), ".tar")

    add("dotdot-escape", tar(f("../escape", b"escaped\n")))
    add("dotdot-deep", tar(d("a/"), f("a/../../escape-deep", b"escaped\n")))
    add("absolute-name", tar(f("/etc/escape", b"escaped\n")))
    add("symlink-etc-then-write", tar(
        member("link", typeflag=b"2", linkname="/etc"),
        f("link/passwd", b"root::0:0:pwned:/:/bin/sh\n")))
    add("symlink-climb-then-write", tar(
        member("up", typeflag=b"2", linkname="../../.."),
        f("up/escape-up", b"escaped\n")))
    add("symlink-loop", tar(
        member("a", typeflag=b"2", linkname="b"),
        member("b", typeflag=b"2", linkname="a"),
        f("a/x")))
    add("hardlink-dotdot", tar(member("h", typeflag=b"1", linkname="../../etc/passwd")))
    add("hardlink-absolute", tar(member("h", typeflag=b"1", linkname="/etc/shadow")))
    add("hardlink-through-symlink", tar(
        member("link", typeflag=b"2", linkname="/etc"),
        member("h", typeflag=b"1", linkname="link/shadow")))
    add("whiteout-dotdot-name", tar(f(".wh..."), ))          # hidden name is ".."
    add("whiteout-dotdot-name-in-subdir", tar(d("sub/"), f("sub/.wh...")))
    add("whiteout-dot-name", tar(d("keep/"), f("keep/file"), f(".wh..")))  # hidden name is "."
    add("whiteout-parent-escape", tar(f("../.wh.x")))
    add("whiteout-empty-name", tar(f(".wh.")))
    add("whiteout-through-symlink", tar(
        member("link", typeflag=b"2", linkname="/etc"),
        f("link/.wh.passwd")))
    add("char-device-mem", tar(d("dev/"), member("dev/mem", typeflag=b"3", mode=0o666,
                                                 devmajor=1, devminor=1)))
    add("block-device-sda", tar(d("dev/"), member("dev/sda", typeflag=b"4", mode=0o666,
                                                  devmajor=8, devminor=0)))
    add("pax-path-100k", tar(pax([("path", "p/" + "a" * (100 * 1024))]), f("placeholder")))
    add("pax-path-dotdot", tar(pax([("path", "../escape-pax")]), f("innocent")))
    add("gnu-longname-dotdot", tar(
        member("././@LongLink", b"../escape-gnu-" + b"l" * 120 + b"\0", typeflag=b"L", gnu=True),
        f("innocent-gnu")))
    add("pax-xattr-trusted-overlay", tar(
        pax([("SCHILY.xattr.trusted.overlay.redirect", "/etc"),
             ("SCHILY.xattr.trusted.overlay.opaque", "y")]),
        d("redirected/")))
    # A header claiming 10 GiB (base-256 size) and nothing after it.
    add("truncated-10g-claim", header("huge", size=10 * GiB), )
    # GNU old sparse: real size 10 GiB, one 512-byte data chunk at the very end.
    sp = {386: _octal(10 * GiB - 512, 12), 398: _octal(512, 12), 483: _octal(10 * GiB, 12)}
    add("gnu-sparse-10g", tar(header("sparse", size=512, typeflag=b"S", gnu=True, raw=sp)
                              + b"S" * 512))
    add("duplicate-same-name", tar(f("dup", b"first\n"), f("dup", b"second\n")))
    add("duplicate-file-then-dir", tar(f("x", b"file\n"), d("x/"), f("x/inner")))
    add("duplicate-dir-then-file", tar(d("x/"), f("x/inner"), f("x", b"file now\n")))
    add("file-as-parent", tar(f("p", b"file\n"), f("p/child")))

    # gzip bomb: 150 MiB of zeros in one file, layer gzip'd (~150 KB).
    g = GzStream()
    g.write(header("zeros", size=150 * MiB))
    g.zeros(150 * MiB)
    g.write(END)
    blob, did = g.finish()
    add("gzip-bomb-150m", blob, diff_id=did)

    # zstd bomb: a 1 GiB file of zeros, hand-written RLE frame.
    pre = header("zeros", size=GiB)
    blob = zstd_rle_bomb(pre, GiB + 1024)
    add("zstd-bomb-1g", blob, diff_id=zeros_sha(pre, GiB + 1024))

    # PAX extended header claiming 1 GiB (all zeros) before a tiny file, gzip'd layer (~1 MB),
    # so the archive is gzip'd too (nested) to stay small.
    g = GzStream()
    g.write(header("PaxHeader", size=GiB, typeflag=b"x"))
    g.zeros(GiB)
    g.write(f("after-pax"))
    g.write(END)
    blob, did = g.finish()
    out["layer-pax-header-1g"] = (gz(docker_archive("pax-header-1g", blob, diff_id=did)), ".tar.gz")

    # Nested gzip bomb: gzip'd archive holding a gzip'd layer with a 1 GiB file of zeros.
    g = GzStream()
    g.write(header("zeros", size=GiB))
    g.zeros(GiB)
    g.write(END)
    blob, did = g.finish()
    out["layer-gzip-bomb-1g-nested"] = (gz(docker_archive("gzip-bomb-1g-nested", blob,
                                                          diff_id=did)), ".tar.gz")
    return out


def archive_cases():
    out = {}
    layer = tar(f("hello", b"hello\n"))
    good = sha(layer)

    out["archive-diffid-mismatch"] = (
        docker_archive("diffid-mismatch", layer, diff_id=sha(b"something else")), ".tar")
    out["archive-two-layers-one-diffid"] = (docker_archive(
        "two-layers", layer, manifest=json.dumps([{
            "Config": sha(config_json([good]))[7:] + ".json",
            "RepoTags": ["hostile/two:latest"],
            "Layers": ["layer0/layer.tar", "layer0/layer.tar"]}]).encode()), ".tar")
    # 100,000-deep nested arrays inside the config (gzip'd archive: the config alone is 200 KB).
    deep = b"[" * 100000 + b"]" * 100000
    cfg = config_json([good])[:-1] + b',"deep":' + deep + b"}"
    out["archive-config-deep-json"] = (gz(docker_archive("deep", layer, config=cfg)), ".tar.gz")
    out["archive-manifest-deep-json"] = (gz(docker_archive(
        "deep-manifest", layer, manifest=deep)), ".tar.gz")
    # manifest.json with 1,000,000 entries (all the same image; short names keep it small).
    def small_archive(config, manifest):
        return gz(tar(member("manifest.json", manifest), member("c.json", config),
                      member("l", layer)))
    entry = '{"Config":"c.json","Layers":["l"]}'
    big = ("[" + ",".join([entry] * 1000000) + "]").encode()
    out["archive-manifest-1m-entries"] = (small_archive(config_json([good]), big), ".tar.gz")
    # A manifest.json whose Layers array has 1,000,000 elements (the config names one diffID).
    man = json.dumps([{"Config": "c.json", "RepoTags": ["hostile/million:latest"],
                       "Layers": ["l"] * 1000000}]).encode()
    out["archive-manifest-1m-layers-array"] = (small_archive(config_json([good]), man), ".tar.gz")
    # One image with 100,000 layers, all the same layer file, diffIDs matching.
    cfg = config_json([good] * 100000)
    man = json.dumps([{"Config": "c.json", "RepoTags": ["hostile/many:latest"],
                       "Layers": ["l"] * 100000}]).encode()
    out["archive-100k-layers"] = (small_archive(cfg, man), ".tar.gz")
    # Config / layer paths that leave the archive.
    out["archive-config-path-escape"] = (docker_archive("cfg-escape", layer, manifest=json.dumps([{
        "Config": "../../../../etc/passwd", "RepoTags": [], "Layers": ["layer0/layer.tar"]}]).encode()),
        ".tar")
    out["archive-layer-symlink-to-etc"] = (docker_archive("layer-link", layer, manifest=json.dumps([{
        "Config": sha(config_json([good]))[7:] + ".json", "RepoTags": ["hostile/ll:latest"],
        "Layers": ["evil.tar"]}]).encode(),
        extra=(member("evil.tar", typeflag=b"2", linkname="/etc/shadow"),)), ".tar")
    out["archive-entry-dotdot"] = (docker_archive("outer", layer, extra=(f("../outer-escape"),)),
                                   ".tar")
    whole = gz(docker_archive("trunc", layer))
    out["archive-gzip-truncated"] = (whole[:len(whole) // 2], ".tar.gz")
    out["archive-not-a-tar"] = (b"this is not a tar archive\n" * 40, ".tar")
    out["archive-empty"] = (b"", ".tar")

    # OCI layouts.
    lb = gz(tar(f("hello", b"hello\n")))
    out["oci-ok-baseline"] = (oci_image("baseline", lb), ".tar")
    out["oci-layer-mediatype-lies-zstd"] = (oci_image(
        "mt-zstd", lb, layer_mt="application/vnd.oci.image.layer.v1.tar+zstd"), ".tar")
    out["oci-mediatypes-garbage"] = (oci_image(
        "mt-garbage", lb, layer_mt="text/html", config_mt="application/x-evil",
        manifest_mt="image/png"), ".tar")
    out["oci-manifest-labelled-as-index"] = (oci_image(
        "mt-index", lb, index_entry_mt="application/vnd.oci.image.index.v1+json"), ".tar")
    out["oci-descriptor-sizes-lie"] = (oci_image("sizes", lb, layer_size=1, config_size=3),
                                       ".tar")
    out["oci-diffid-mismatch"] = (oci_image("oci-diffid", lb, diff_id=sha(b"nope")), ".tar")
    idx = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "sha256:../../../../../../etc/passwd", "size": 1}]}).encode()
    out["oci-digest-traversal"] = (oci_archive("trav", idx, []), ".tar")
    idx = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "sha256:" + "0" * 64, "size": 1}]}).encode()
    out["oci-missing-blob"] = (oci_archive("missing", idx, []), ".tar")
    # 2,000 nested indexes (gzip'd archive).
    cfg = config_json([sha(tar(f("hello", b"hello\n")))])
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                 "digest": sha(cfg), "size": len(cfg)},
                      "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                  "digest": sha(lb), "size": len(lb)}]}).encode()
    blobs = [cfg, lb, man]
    cur, cur_mt = man, "application/vnd.oci.image.manifest.v1+json"
    for _ in range(2000):
        nxt = json.dumps({"schemaVersion": 2, "manifests": [{
            "mediaType": cur_mt, "digest": sha(cur), "size": len(cur)}]}).encode()
        blobs.append(nxt)
        cur, cur_mt = nxt, "application/vnd.oci.image.index.v1+json"
    top = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": cur_mt, "digest": sha(cur), "size": len(cur)}]}).encode()
    out["oci-nested-index-2000"] = (gz(oci_archive("nested", top, blobs)), ".tar.gz")
    return out


def generated_archives():
    """Archives too big to commit (over 200 KB even gzip'd): name -> bytes, made at test time
    (recipe {"kind": "generated", "name": ...})."""
    out = {}
    layer = tar(f("hello", b"hello\n"))
    good = sha(layer)
    lb = gz(layer)
    cfg = config_json([good])
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                 "digest": sha(cfg), "size": len(cfg)},
                      "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                  "digest": sha(lb), "size": len(lb)}]}).encode()
    # An OCI index with 1,000,000 manifest descriptors, all the same manifest.
    desc = json.dumps({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": sha(man), "size": len(man)})
    top = ('{"schemaVersion":2,"manifests":[' + ",".join([desc] * 1000000) + "]}").encode()
    out["oci-index-1m-manifests.tar.gz"] = lambda: gz(oci_archive("million", top, [cfg, lb, man]))
    # One image with 1,000,000 layers (the same layer file each time, diffIDs matching).
    cfg1m = config_json([good] * 1000000)
    man1m = json.dumps([{"Config": "c.json", "RepoTags": ["hostile/million:latest"],
                         "Layers": ["l"] * 1000000}]).encode()
    out["archive-1m-layers.tar.gz"] = lambda: gz(tar(
        member("manifest.json", man1m), member("c.json", cfg1m), member("l", layer)), level=6)
    return out


def dockerfile_cases():
    out = {}
    out["df-nul-bytes"] = (b"FROM scratch\nLABEL a=b\x00c\nENV X=\x00\x00\n", "")
    out["df-invalid-utf8"] = (b"FROM scratch\nLABEL a=\xff\xfe\xc3\x28 b=\xed\xa0\x80\n", "")
    out["df-nul-in-instruction"] = (b"FR\x00OM scratch\n", "")
    nested = "${v0:-" * 1000 + "end" + "}" * 1000
    out["df-nested-expansion-1000"] = (("FROM scratch\nENV A=" + nested + "\n").encode(), "")
    out["df-unterminated-expansion"] = (("FROM scratch\nENV A=" + "${v:-" * 1000 + "\n").encode(),
                                        "")
    out["df-unterminated-heredoc"] = (b"# syntax=docker/dockerfile:1\nFROM scratch\nCOPY <<EOF /x\n"
                                      + b"line\n" * 100, "")
    # .dockerignore files for the generated context (run.py adds the Dockerfile and files).
    out["ignore-star-backtrack"] = (
        ("**/**/**/**/**/**/**/**/**/**/*a*a*a*a*a*a*a*a*b\n"
         "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b\n"
         "!**/**/**/**/**/**/**/**/**/**/**/**/**/**/**/**/**/**/**/**/x\n").encode(), "")
    out["ignore-10k-patterns"] = (
        "".join("**/%d*a*b\n" % i for i in range(10000)).encode(), "")
    return out


# ---------------------------------------------------------------------------------------------
# recipes (materialised by run.py at test time; see cases.json)


def materialise(recipe, dest_dir):
    """Writes what a recipe describes into dest_dir; returns the path of the main file
    (a Dockerfile) and, for contexts, creates dest_dir/ctx."""
    kind = recipe["kind"]
    os.makedirs(dest_dir, exist_ok=True)
    df = os.path.join(dest_dir, "Dockerfile")
    ctx = os.path.join(dest_dir, "ctx")
    os.makedirs(ctx, exist_ok=True)
    if kind == "generated":
        gen = generated_archives()[recipe["name"]]
        p = os.path.join(dest_dir, recipe["name"])
        with open(p, "wb") as o:
            o.write(gen())
        return p
    if kind == "dockerfile-long-line":
        with open(df, "wb") as o:
            o.write(b"FROM scratch\nLABEL big=" + b"a" * recipe["line_bytes"] + b"\n")
    elif kind == "dockerfile-continuation":
        with open(df, "wb") as o:
            o.write(b"FROM scratch\nLABEL a=\\\n" + b"b\\\n" * recipe["lines"] + b"c\n")
    elif kind == "dockerfile-nested-expansion":
        n = recipe["levels"]
        with open(df, "wb") as o:
            o.write(b"FROM scratch\nENV A=" + b"${v:-" * n + b"end" + b"}" * n + b"\n")
    elif kind == "dockerfile-stages":
        with open(df, "wb") as o:
            o.write(b"".join(b"FROM scratch AS s%d\n" % i for i in range(recipe["stages"])))
    elif kind == "add-layer":
        # The hostile layer of a corpus archive, ADDed (auto-extracted) by a build over a canary.
        import run  # noqa: F401 (extract_layer lives with the runner)
        run.extract_layer(os.path.join(HERE, recipe["archive"]), os.path.join(ctx, "layer.tar"))
        with open(os.path.join(ctx, "canary"), "wb") as o:
            o.write(b"canary\n")
        with open(df, "wb") as o:
            o.write(b"FROM scratch\nCOPY canary /canary\nADD layer.tar %s\n"
                    % recipe.get("dest", "/").encode())
    elif kind == "dockerignore-context":
        for i in range(recipe["files"]):
            sub = os.path.join(ctx, "d%d" % (i % 17), "a" * (i % 40 + 1))
            os.makedirs(sub, exist_ok=True)
            with open(os.path.join(sub, "a" * 60 + "%d" % i), "wb") as o:
                o.write(b"x")
        if "ignore_file" in recipe:
            with open(os.path.join(CORPUS, recipe["ignore_file"]), "rb") as i:
                ig = i.read()
        else:
            ig = b"*" + b"a*" * (recipe["pattern_bytes"] // 2) + b"b\n"
        with open(os.path.join(ctx, ".dockerignore"), "wb") as o:
            o.write(ig)
        with open(df, "wb") as o:
            o.write(b"FROM scratch\nCOPY . /ctx/\n")
    else:
        raise ValueError("unknown recipe kind " + kind)
    return df


def main():
    check = "--check" in sys.argv
    os.makedirs(CORPUS, exist_ok=True)
    files = {}
    for name, (data, suffix) in layer_cases().items():
        files[name + suffix] = data
    for name, (data, suffix) in archive_cases().items():
        files[name + suffix] = data
    for name, (data, suffix) in dockerfile_cases().items():
        files[name + (".dockerignore" if name.startswith("ignore-") else ".Dockerfile")] = data
    bad = []
    for name, data in sorted(files.items()):
        if len(data) > MAX_FILE:
            bad.append("%s is %d bytes (over %d)" % (name, len(data), MAX_FILE))
        p = os.path.join(CORPUS, name)
        if check:
            try:
                with open(p, "rb") as i:
                    same = i.read() == data
            except FileNotFoundError:
                same = False
            if not same:
                bad.append("%s differs from what make.py writes" % name)
        else:
            with open(p, "wb") as o:
                o.write(data)
        print("%8d  %s" % (len(data), name))
    if bad:
        sys.exit("\n".join(bad))


if __name__ == "__main__":
    main()
