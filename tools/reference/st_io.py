"""Deterministic safetensors writer for the fixtures.

safetensors.torch.save_file writes the __metadata__ entries in hash-map order, so regenerating a
fixture changes its bytes even when no value changed. This writer emits the same format
(8-byte little-endian header length, JSON header padded with spaces to a multiple of 8, then the raw
little-endian tensor data) with metadata keys sorted and tensors ordered by (element size descending,
name), so every tensor starts at an offset aligned to its element size and identical inputs give
identical files.
"""
import json
import os
import struct

import torch

DTYPES = {torch.float32: ("F32", 4), torch.int64: ("I64", 8), torch.float64: ("F64", 8)}


def save_sorted(tensors, path, metadata=None):
    items = []
    for name, t in tensors.items():
        if t.dtype not in DTYPES:
            raise TypeError(f"st_io: tensor {name} has unsupported dtype {t.dtype}")
        items.append((name, t.detach().contiguous().cpu()))
    items.sort(key=lambda kv: (-DTYPES[kv[1].dtype][1], kv[0]))
    header = {}
    if metadata:
        header["__metadata__"] = {k: str(metadata[k]) for k in sorted(metadata)}
    blobs, offset = [], 0
    for name, t in items:
        data = t.numpy().astype(t.numpy().dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": DTYPES[t.dtype][0], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
