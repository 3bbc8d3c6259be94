#!/usr/bin/env python3
"""Independent check of the MAT files this crate writes, with scipy's loadmat.

Usage:
  scipy_check.py pepana FILE     JSON summary of the pvc-1 variable `pepANA`
  scipy_check.py generic FILE    JSON dump of every variable (class, shape, values)
  scipy_check.py write FILE      write a reference file with scipy.io.savemat

The Rust tests (tests/mat_scipy.rs) run this script and compare its JSON with what the
crate wrote or reads. Loading uses squeeze_me=False and struct_as_record=False, so
shapes are exactly as stored and structs/objects keep their field names.
"""
import json
import sys

import numpy as np
from scipy.io import loadmat, savemat
from scipy.io.matlab import MatlabObject, mat_struct


def load(path):
    return loadmat(path, squeeze_me=False, struct_as_record=False)


def kind(x):
    if isinstance(x, MatlabObject):
        return "object"
    if isinstance(x, mat_struct):
        return "struct"
    if isinstance(x, np.ndarray):
        if x.dtype == object:
            if x.size and all(isinstance(e, mat_struct) for e in x.flat):
                return "struct"
            return "cell"
        if x.dtype.kind == "U":
            return "char"
        if x.dtype == bool:
            return "logical"
        return "numeric"
    return type(x).__name__


def numeric_list(a):
    return [float(v) for v in np.asarray(a).flatten(order="F")]


def struct_fields(s):
    """Field names of a mat_struct (scipy keeps them in file order)."""
    return list(s._fieldnames)


def only(a):
    """The single element of a 1x1 object/cell array."""
    assert a.shape == (1, 1), a.shape
    return a[0, 0]


def pepana(path):
    d = load(path)
    names = sorted(k for k in d if not k.startswith("__"))
    pep_arr = d["pepANA"]
    out = {
        "variables": names,
        "header": d["__header__"].decode("latin-1"),
        "pepANA": {"kind": kind(pep_arr), "shape": list(pep_arr.shape)},
    }
    pep = only(pep_arr)
    out["pepANA"]["fields"] = struct_fields(pep)
    out["no_conditions"] = numeric_list(pep.no_conditions)
    out["elec_list"] = {
        "dtype": str(pep.elec_list.dtype),
        "shape": list(pep.elec_list.shape),
        "values": numeric_list(pep.elec_list),
    }
    lor = pep.listOfResults
    out["listOfResults"] = {"kind": kind(lor), "shape": list(lor.shape)}
    conditions = []
    for c_arr in lor.flatten(order="F"):
        c = only(c_arr)
        cond = {
            "fields": struct_fields(c),
            "noRepeats": numeric_list(c.noRepeats),
            "symbols_shape": list(c.symbols.shape),
            "symbols": [str(s[0]) if s.size else "" for s in c.symbols.flatten(order="F")],
            "values_shape": list(c.values.shape),
            "values": [numeric_list(v) for v in c.values.flatten(order="F")],
            "condition": numeric_list(c.condition),
            "repeat": {"kind": kind(c.repeat), "shape": list(c.repeat.shape)},
            "repeats": [],
        }
        for r_arr in c.repeat.flatten(order="F"):
            r = only(r_arr)
            rep = {
                "fields": struct_fields(r),
                "tzero": numeric_list(r.tzero),
                "timeTag": numeric_list(r.timeTag),
                "data": {"kind": kind(r.data), "shape": list(r.data.shape)},
                "electrodes": [],
            }
            for e in r.data.flatten(order="F"):
                times, snippets = e[0, 0], e[0, 1]
                rep["electrodes"].append({
                    "cell_shape": list(e.shape),
                    "times_dtype": str(times.dtype),
                    "times_shape": list(times.shape),
                    "times": numeric_list(times),
                    "snippets_dtype": str(snippets.dtype),
                    "snippets_shape": list(snippets.shape),
                    # column-major, so each 48-sample snippet is contiguous
                    "snippets": [int(v) for v in snippets.flatten(order="F")],
                })
            cond["repeats"].append(rep)
        conditions.append(cond)
    out["conditions"] = conditions
    return out


def dump(x):
    k = kind(x)
    if k == "object":
        return {
            "kind": "object",
            "classname": x.classname,
            "shape": list(x.shape),
            "elements": [dump_struct(s) for s in x.flatten(order="F")],
        }
    if k == "struct":
        arr = np.atleast_2d(x) if not isinstance(x, mat_struct) else None
        elems = [x] if arr is None else list(arr.flatten(order="F"))
        return {
            "kind": "struct",
            "shape": [1, 1] if arr is None else list(arr.shape),
            "elements": [dump_struct(s) for s in elems],
        }
    if k == "cell":
        return {"kind": "cell", "shape": list(x.shape), "items": [dump(e) for e in x.flatten(order="F")]}
    if k == "char":
        # loadmat gives an array of row strings; a 1xN char comes back as shape (1,)
        return {"kind": "char", "shape": list(x.shape), "text": "".join(str(s) for s in x.flatten())}
    if k == "logical":
        return {"kind": "logical", "shape": list(x.shape), "values": [bool(v) for v in x.flatten(order="F")]}
    if k == "numeric":
        out = {"kind": "numeric", "dtype": str(x.dtype), "shape": list(x.shape)}
        if x.dtype.kind == "f" and np.isnan(x).any():
            out["values"] = None  # JSON has no NaN
        else:
            out["values"] = numeric_list(x)
        if x.dtype.kind == "f":
            out["signbit"] = [bool(v) for v in np.signbit(x).flatten(order="F")]
        return out
    return {"kind": k}


def dump_struct(s):
    return {name: dump(getattr(s, name)) for name in struct_fields(s)}


def generic(path):
    d = load(path)
    return {
        "header": d["__header__"].decode("latin-1"),
        "variables": {k: dump(v) for k, v in d.items() if not k.startswith("__")},
    }


def write_reference(path):
    """A small file written by scipy (header text differs from MATLAB's), holding an
    old-style object, a struct, a cell with an empty entry, int8 and char data."""
    loop = np.empty((1, 1), dtype=[("data", object), ("tzero", object)])
    loop[0, 0]["data"] = np.array([[np.array([[0.5, 1.25]]), np.array([[1, -2], [3, -4]], dtype=np.int8)]], dtype=object)
    loop[0, 0]["tzero"] = np.array([[12.5]])
    pep = np.empty((1, 1), dtype=[("elec_list", object), ("tags", object), ("looper", object)])
    pep[0, 0]["elec_list"] = np.array([[5.0, 6.0, 10.0]])
    tags = np.empty((1, 3), dtype=object)
    tags[0, 0] = "movie_id"
    tags[0, 1] = np.zeros((0, 0))
    tags[0, 2] = np.array([[7]], dtype=np.uint16)
    pep[0, 0]["tags"] = tags
    pep[0, 0]["looper"] = MatlabObject(loop, "peplooper")
    savemat(path, {"pepANA": MatlabObject(pep, "pepmodule"), "flag": np.array([[True, False]])},
            do_compression=True, oned_as="row")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("pepana", "generic", "write"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "write":
        write_reference(path)
        return
    result = pepana(path) if mode == "pepana" else generic(path)
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
