#!/usr/bin/python3
"""Writes the small PyTorch-format fixtures of tests/weights (and the fuzz seed corpus) without
torch: fake torch modules make the standard pickler emit exactly what torch.save emits
(GLOBAL 'torch._utils _rebuild_tensor_v2', persistent ids ('storage', torch.FloatStorage, key,
'cpu', numel)), and the containers are written by hand so each layout is exercised:

  data/views.bin      zip, root 'archive/', strided/offset/shared views, f16/bf16/f64/i64/i32
                      storages, _rebuild_parameter, a nested dict with global_step and an
                      optimizer entry built by a class Lily does not know
  data/zip64.bin      the same object in a zip whose every size and offset is in zip64 fields
                      (as torch writes archives over 4 GiB), with a zip64 end record
  data/deflated.bin   the same, every entry deflated, root 'deflated/'
  data/legacy.pt      the same, in the pre-1.6 torch format (five pickles, then storages)
  data/tiny.safetensors  three tensors and a metadata entry
  tiny-a-digest.tsv   SHA-256 digests of ../shared/audiosr/tiny-a.bin's tensors (see below)
  ../fuzz/corpus/     the fuzz targets' seeds: the files above, their pickles, and a
                      safetensors file carrying tiny-a.yaml as its "lily.config"

Values follow formulas the C tests recompute: storage k element i = (k + 1) * 0.25 * i (- 1 for
the f16/bf16 ones), so no numbers need committing.
Run: /usr/bin/python3 tests/weights/make-fixtures.py [AUDIOSR_DIR]  (numpy only for the digest)
"""
import collections, hashlib, io, os, pickle, struct, sys, types, zipfile, zlib

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- fake torch ------------------------------------------------------------------------
torch = types.ModuleType("torch")
torch_utils = types.ModuleType("torch._utils")
sys.modules["torch"] = torch
sys.modules["torch._utils"] = torch_utils


def _rebuild_tensor_v2(*a):
    raise RuntimeError("never called")


def _rebuild_parameter(*a):
    raise RuntimeError("never called")


for f in (_rebuild_tensor_v2, _rebuild_parameter):
    f.__module__ = "torch._utils"
    setattr(torch_utils, f.__name__, f)

STORAGE_TYPES = {}
for name, fmt in [("FloatStorage", "<f"), ("HalfStorage", "<e"), ("BFloat16Storage", None),
                  ("DoubleStorage", "<d"), ("LongStorage", "<q"), ("IntStorage", "<i")]:
    cls = type(name, (), {"__module__": "torch"})
    setattr(torch, name, cls)
    STORAGE_TYPES[name] = (cls, fmt)

# An unknown class (stands for the optimizer/hyper-parameter objects of Lightning checkpoints).
other = types.ModuleType("somelib.optim")
sys.modules["somelib"] = types.ModuleType("somelib")
sys.modules["somelib.optim"] = other


class AdamState:
    def __init__(self, lr):
        self.lr = lr


AdamState.__module__ = "somelib.optim"
other.AdamState = AdamState


def bf16_bytes(values):
    out = b""
    for v in values:
        bits = struct.unpack("<I", struct.pack("<f", v))[0]
        out += struct.pack("<H", bits >> 16)  # values chosen exactly representable
    return out


class Storage:
    def __init__(self, key, type_name, n):
        self.key, self.type_name, self.n = key, type_name, n
        k = int(key)
        if type_name in ("HalfStorage", "BFloat16Storage"):
            vals = [(k + 1) * 0.25 * i - 1 for i in range(n)]
        elif type_name in ("LongStorage", "IntStorage"):
            vals = [(k + 1) * 1000 * i - 7 for i in range(n)]
        else:
            vals = [(k + 1) * 0.25 * i for i in range(n)]
        cls, fmt = STORAGE_TYPES[type_name]
        self.cls = cls
        self.data = bf16_bytes(vals) if fmt is None else b"".join(struct.pack(fmt, v) for v in vals)


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce__(self):
        return (_rebuild_tensor_v2, self.args)


class Parameter:
    def __init__(self, t):
        self.t = t

    def __reduce__(self):
        return (_rebuild_parameter, (self.t, True, collections.OrderedDict()))


def make_object():
    s = {k: Storage(k, t, n) for k, t, n in [
        ("0", "FloatStorage", 12), ("1", "HalfStorage", 6), ("2", "BFloat16Storage", 6),
        ("3", "LongStorage", 5), ("4", "IntStorage", 3), ("5", "DoubleStorage", 3),
        ("6", "FloatStorage", 4), ("7", "FloatStorage", 0)]}
    a = Tensor(s["0"], 0, (3, 4), (4, 1))
    sd = collections.OrderedDict()
    sd["a.f32"] = a
    sd["a.t"] = Tensor(s["0"], 0, (4, 3), (1, 4))          # transposed view
    sd["a.slice"] = Tensor(s["0"], 4, (2, 2), (4, 1))      # offset, row stride 4
    sd["a.bcast"] = Tensor(s["0"], 1, (2, 3), (0, 2))      # stride 0 (expanded)
    sd["b.f16"] = Tensor(s["1"], 0, (6,), (1,))
    sd["b.bf16"] = Tensor(s["2"], 0, (2, 3), (3, 1))
    sd["c.i64"] = Tensor(s["3"], 0, (5,), (1,))
    sd["c.i32"] = Tensor(s["4"], 2, (), ())                # a scalar at offset 2
    sd["d.f64"] = Tensor(s["5"], 0, (3,), (1,))
    sd["e.param"] = Parameter(Tensor(s["6"], 0, (2, 2), (2, 1)))
    sd["f.shared"] = a                                     # the same object again (memo)
    sd["g.empty"] = Tensor(s["7"], 0, (0, 3), (3, 1))
    obj = {"state_dict": sd, "global_step": 1234, "epoch": 7,
           "optimizer_states": [AdamState(0.001)], "lr": 0.5}
    return obj, s


def pickle_object(obj, legacy=False):
    buf = io.BytesIO()
    p = pickle.Pickler(buf, protocol=2)

    def pid(o):
        if isinstance(o, Storage):
            t = ("storage", o.cls, o.key, "cpu", o.n)
            return t + (None,) if legacy else t
        return None

    p.persistent_id = pid
    p.dump(obj)
    return buf.getvalue()


def write_zip_std(path, root, entries, method):
    with zipfile.ZipFile(path, "w", compression=method) as z:
        for name, data in entries:
            info = zipfile.ZipInfo(root + name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = method
            z.writestr(info, data)


def write_zip64(path, root, entries):
    """Every size and offset through zip64 extra fields, plus the zip64 end records."""
    out = bytearray()
    central = bytearray()
    for name, data in entries:
        name = (root + name).encode()
        crc = zlib.crc32(data)
        off = len(out)
        extra = struct.pack("<HHQQ", 1, 16, len(data), len(data))
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF,
                           0xFFFFFFFF, len(name), len(extra)) + name + extra + data
        cextra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), off)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0, crc,
                               0xFFFFFFFF, 0xFFFFFFFF, len(name), len(cextra), 0, 0, 0, 0,
                               0xFFFFFFFF) + name + cextra
    cd_off = len(out)
    out += central
    eocd64_off = len(out)
    n = len(entries)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, len(central), cd_off)
    out += struct.pack("<IIQI", 0x07064B50, 0, eocd64_off, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    open(path, "wb").write(out)


def write_legacy(path, obj, storages):
    out = io.BytesIO()
    for v in (0x1950A86A20F9469CFC6C, 1001,
              {"protocol_version": 1001, "little_endian": True,
               "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(v, out, protocol=2)
    out.write(pickle_object(obj, legacy=True))
    keys = sorted(storages)
    pickle.dump(keys, out, protocol=2)
    for k in keys:
        out.write(struct.pack("<q", storages[k].n) + storages[k].data)
    open(path, "wb").write(out.getvalue())


def write_safetensors(path, tensors=None, metadata=None):
    tensors = tensors or [("w", "F32", [2, 3], struct.pack("<6f", *[0.5 * i for i in range(6)])),
                          ("h", "BF16", [4], bf16_bytes([1.0, -2.0, 0.5, 3.0])),
                          ("n", "I64", [2], struct.pack("<2q", 5, -6))]
    header = {"__metadata__": metadata or {"lily.note": "fuzz seed"}}
    off = 0
    for name, dt, shape, data in tensors:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
    import json
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + b"".join(t[3] for t in tensors))


def digest_tiny_a(audiosr_dir):
    """Per top-level group, SHA-256 over each tensor in pickle order: name, NUL, dtype, NUL,
    shape as int64s, then its elements made contiguous - read with zipfile and pickle, not with
    Lily, so the C test compares against an independent reading of the checkpoint."""
    import numpy as np
    path = os.path.join(audiosr_dir, "tiny-a.bin")
    z = zipfile.ZipFile(path)
    pkl = [n for n in z.namelist() if n.endswith("data.pkl")][0]
    root = pkl[: -len("data.pkl")]
    dtypes = {"FloatStorage": ("f32", np.float32), "IntStorage": ("i32", np.int32),
              "LongStorage": ("i64", np.int64)}

    class U(pickle.Unpickler):
        def find_class(self, mod, name):
            if name == "_rebuild_tensor_v2":
                return lambda st, off, size, stride, *a: ("T", st, off, size, stride)
            if name == "OrderedDict":
                return collections.OrderedDict
            if name.endswith("Storage"):
                return name
            raise pickle.UnpicklingError(mod + "." + name)

        def persistent_load(self, pid):
            return (pid[1], pid[2])

    sd = U(io.BytesIO(z.read(pkl))).load()["state_dict"]
    groups = collections.OrderedDict()
    total = hashlib.sha256()
    for name, (_, (stype, key), off, size, stride) in sd.items():
        dname, npt = dtypes[stype]
        raw = np.frombuffer(z.read(root + "data/" + key), dtype=npt)
        item = raw.itemsize
        view = np.lib.stride_tricks.as_strided(raw[off:], shape=size,
                                               strides=[s * item for s in stride])
        blob = (name.encode() + b"\0" + dname.encode() + b"\0" +
                b"".join(struct.pack("<q", d) for d in size) +
                np.ascontiguousarray(view).tobytes())
        g = name.split(".")[0] if "." in name else "(buffers)"
        groups.setdefault(g, [0, hashlib.sha256()])
        groups[g][0] += 1
        groups[g][1].update(blob)
        total.update(blob)
    lines = ["# tiny-a.bin tensor digests, written by make-fixtures.py: group, tensors, sha256"]
    for g, (n, h) in groups.items():
        lines.append("%s\t%d\t%s" % (g, n, h.hexdigest()))
    lines.append("(all)\t%d\t%s" % (len(sd), total.hexdigest()))
    open(os.path.join(HERE, "tiny-a-digest.tsv"), "w").write("\n".join(lines) + "\n")


def main():
    audiosr = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "..", "shared", "audiosr")
    obj, storages = make_object()
    pkl = pickle_object(obj)
    entries = [("data.pkl", pkl)] + [("data/" + k, s.data) for k, s in storages.items()] + [("version", b"3\n")]
    data = os.path.join(HERE, "data")
    os.makedirs(data, exist_ok=True)
    write_zip_std(os.path.join(data, "views.bin"), "archive/", entries, zipfile.ZIP_STORED)
    write_zip64(os.path.join(data, "zip64.bin"), "zip64/", entries)
    write_zip_std(os.path.join(data, "deflated.bin"), "deflated/", entries, zipfile.ZIP_DEFLATED)
    write_legacy(os.path.join(data, "legacy.pt"), obj, storages)
    write_safetensors(os.path.join(data, "tiny.safetensors"))
    corpus = os.path.join(HERE, "..", "fuzz", "corpus")
    for sub in ("torch-zip", "safetensors", "pickle"):
        os.makedirs(os.path.join(corpus, sub), exist_ok=True)
    for name in ("views.bin", "zip64.bin", "deflated.bin", "legacy.pt"):
        open(os.path.join(corpus, "torch-zip", name), "wb").write(open(os.path.join(data, name), "rb").read())
    open(os.path.join(corpus, "safetensors", "tiny.safetensors"), "wb").write(
        open(os.path.join(data, "tiny.safetensors"), "rb").read())
    open(os.path.join(corpus, "pickle", "views.pkl"), "wb").write(pkl)
    open(os.path.join(corpus, "pickle", "legacy.pkl"), "wb").write(pickle_object(obj, legacy=True))
    yaml_path = os.path.join(audiosr, "tiny-a.yaml")
    if os.path.exists(yaml_path):
        cfg = open(yaml_path).read()
        write_safetensors(os.path.join(corpus, "safetensors", "config.safetensors"),
                          [("scale_factor", "F32", [], struct.pack("<f", 0.7)),
                           ("model.diffusion_model.out.2.bias", "F32", [16], struct.pack("<16f", *range(16))),
                           ("model_ema.num_updates", "I32", [], struct.pack("<i", 3))],
                          {"lily.config": cfg, "lily.format": "1"})
    if os.path.exists(os.path.join(audiosr, "tiny-a.bin")):
        digest_tiny_a(audiosr)


main()
