#!/usr/bin/env python3
"""Writes the seed corpus of the `mat_reader` fuzz target into seeds/mat_reader/.

Small, valid Level-5 files in the shapes the pvc-1 data uses (written by scipy, so the
seeds do not depend on our own writer): a pepANA-like struct with old-style objects,
cells, int8 snippet matrices and empty arrays, compressed and not; and a hand-built
big-endian file. Run: python3 make_seeds.py (needs scipy).
"""
import os
import struct

import numpy as np
from scipy.io import savemat
from scipy.io.matlab import MatlabObject

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds", "mat_reader")


def cell(items):
    c = np.empty((1, len(items)), dtype=object)
    for i, x in enumerate(items):
        c[0, i] = x
    return c


def record(**fields):
    r = np.empty((1, 1), dtype=[(k, object) for k in fields])
    for k, v in fields.items():
        r[0, 0][k] = v
    return r


def pepana(as_objects):
    snips = (np.arange(48 * 2).reshape(48, 2, order="F") % 120 - 60).astype(np.int8)
    data = cell([
        cell([np.array([[0.01, 0.5]]), snips]),
        cell([np.zeros((1, 0)), np.zeros((48, 0), dtype=np.int8)]),
    ])
    trial = record(data=data, tzero=np.array([[12.5]]), timeTag=np.array([[0.0]]))
    cond = record(noRepeats=np.array([[1.0]]), symbols=cell(["movie_id", "segment_id"]),
                  values=cell([np.array([[0.0]]), np.array([[3.0]])]), condition=np.array([[1.0]]),
                  repeat=cell([trial]))
    other = record(noRepeats=np.array([[1.0]]), symbols=cell(["rseed"]), values=cell([np.array([[7.0]])]),
                   condition=np.array([[2.0]]), repeat=cell([trial]))
    if as_objects:
        cond = MatlabObject(cond, "peplooper")
    pep = record(no_conditions=np.array([[2.0]]), elec_list=np.array([[5.0, 6.0]]),
                 listOfResults=cell([cond, other]))
    return MatlabObject(pep, "pepmodule") if as_objects else pep


def big_endian_file(path):
    def el(ty, data):
        pad = (-len(data)) % 8
        return struct.pack(">II", ty, len(data)) + data + b"\0" * pad

    def matrix(cls, dims, name, body):
        content = el(6, struct.pack(">II", cls, 0)) + el(5, struct.pack(">%di" % len(dims), *dims)) + el(1, name)
        return el(14, content + body)

    x = matrix(6, [1, 3], b"x", el(9, struct.pack(">3d", 1.0, 2.5, -3.0)))
    s = matrix(4, [1, 2], b"s", el(4, struct.pack(">2H", ord("h"), ord("i"))))
    header = b"MATLAB 5.0 MAT-file, big-endian seed".ljust(116, b" ") + b"\0" * 8 + struct.pack(">H", 0x0100) + b"MI"
    with open(path, "wb") as f:
        f.write(header + x + s)


def main():
    os.makedirs(OUT, exist_ok=True)
    for objects in (False, True):
        for compress in (False, True):
            name = "pepana_%s_%s.mat" % ("obj" if objects else "struct", "zlib" if compress else "plain")
            savemat(os.path.join(OUT, name), {"pepANA": pepana(objects)}, do_compression=compress)
    savemat(os.path.join(OUT, "kinds_plain.mat"), {
        "b": np.array([[True, False]]), "u16": np.array([[1, 65535]], dtype=np.uint16),
        "f": np.array([[1.5]], dtype=np.float32), "t": np.array(["µm"]), "e": np.zeros((0, 0)),
    }, do_compression=False)
    big_endian_file(os.path.join(OUT, "big_endian.mat"))


if __name__ == "__main__":
    main()
