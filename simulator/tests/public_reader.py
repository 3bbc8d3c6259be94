#!/usr/bin/env python3
"""Reads a pvc-1 tree the way public pvc-1 loaders do, and checks what they rely on.

Usage:
  public_reader.py TREE EXPECTED_JSON

TREE is the `crcns-ringach-data` folder. EXPECTED_JSON maps each recording's path
relative to TREE (`neurodata/ac1/ac1_u004_000.mat`) to what this crate's own reader
returned for it (electrodes; per condition symbols, values, condition and per repeat
tzero, time_tag and the event times of every electrode).

Loading is `scipy.io.loadmat(path)` with its DEFAULT options, like the public loaders:
arrays come back in the type they are stored in, structs as numpy records. The checks:
- `pepANA` by position: `m[6]` is `listOfResults`, `m[-1]` is `elec_list`; in each
  condition `values` is first and `repeat` 5th; in each repeat `data` is 5th;
- `noRepeats`, `values`, `condition`, `no_conditions`, `elec_list`, `timeTag` have integer
  dtypes, so `range(noRepeats)` and `'{:03d}'.format(movie)` work as loaders use them;
- the frame folder `movie{MMM}_{SSS}.images` named from `values` exists with its frames;
- event times, read at `rep['data'][0][e][0][0]`, are doubles, multiples of 1/30000,
  ascending, and equal to what the crate's reader returned; snippets are 48xN int8.

Every problem is collected (a check that fails does not hide the ones after it); the
script prints them and exits 1, or prints a JSON summary of what it checked and exits 0.
"""
import glob
import json
import os
import sys

import numpy as np
from scipy.io import loadmat

SAMPLE_RATE_HZ = 30000.0
SNIPPET_LEN = 48


class Checker:
    def __init__(self):
        self.errors = []

    def check(self, ok, where, message):
        if not ok:
            self.errors.append(f"{where}: {message}")
        return ok


def is_int(a):
    return np.issubdtype(np.asarray(a).dtype, np.integer)


def dtype_of(a):
    return str(np.asarray(a).dtype)


def field_at(record, index, name, ck, where):
    """`record[index]` when that position holds `name` (what a positional reader gets);
    otherwise records the problem and falls back to the name so later checks still run."""
    names = record.dtype.names or ()
    if ck.check(-len(names) <= index < len(names) and names[index] == name, where,
                f"field {index} should be `{name}`; fields are {list(names)}"):
        value = record[index]
        ck.check(value is record[name] or np.array_equal(value, record[name]), where,
                 f"record[{index}] and record['{name}'] differ")
        return value
    return record[name]


def read_file(tree, rel, expected, ck, summary):
    path = os.path.join(tree, rel)
    m = loadmat(path)["pepANA"][0, 0]
    names = m.dtype.names
    ck.check(len(names) >= 7, rel, f"pepANA has {len(names)} fields, the real files at least 7")
    lor = field_at(m, 6, "listOfResults", ck, rel)
    elec = field_at(m, -1, "elec_list", ck, rel)
    no_conditions = m["no_conditions"]
    for name, value in (("elec_list", elec), ("no_conditions", no_conditions)):
        ck.check(is_int(value), rel, f"{name} is {dtype_of(value)}, the real files store an integer type")
    electrodes = [int(e) for e in np.asarray(elec).flatten()]
    ck.check(electrodes == expected["electrodes"], rel,
             f"elec_list {electrodes} != {expected['electrodes']}")
    ck.check(int(no_conditions[0, 0]) == lor.size == len(expected["conditions"]), rel,
             f"no_conditions {no_conditions[0, 0]}, listOfResults {lor.size}, "
             f"expected {len(expected['conditions'])}")

    for c in range(lor.shape[1]):
        where = f"{rel} listOfResults{{{c + 1}}}"
        exp = expected["conditions"][c]
        res = lor[0, c][0, 0]
        values = field_at(res, 0, "values", ck, where)
        reps = field_at(res, 4, "repeat", ck, where)
        symbols = [str(s[0]) for s in res["symbols"][0]]
        ck.check(symbols == exp["symbols"], where, f"symbols {symbols} != {exp['symbols']}")
        value_items = [v for v in values[0]]
        for i, v in enumerate(value_items):
            ck.check(is_int(v), where, f"values{{{i + 1}}} is {dtype_of(v)}, expected an integer type")
        got_values = [float(v[0, 0]) for v in value_items]
        ck.check(got_values == exp["values"], where, f"values {got_values} != {exp['values']}")
        for name in ("noRepeats", "condition"):
            ck.check(is_int(res[name]), where, f"{name} is {dtype_of(res[name])}, expected an integer type")
        ck.check(float(res["condition"][0, 0]) == exp["condition"], where,
                 f"condition {res['condition'][0, 0]} != {exp['condition']}")
        if "movie_id" not in symbols:
            summary["skipped_conditions"] += 1
            continue
        summary["movie_conditions"] += 1

        movie, segment = (v[0, 0] for v in value_items)
        try:
            node = "movie{:03d}_{:03d}".format(movie, segment)
        except (ValueError, TypeError) as e:
            ck.check(False, where, f"cannot name the frame folder from values ({e})")
            node = "movie{:03d}_{:03d}".format(int(movie), int(segment))
        folder = os.path.join(tree, "movie_frames", node + ".images")
        if ck.check(os.path.isfile(os.path.join(folder, "nframes")), where, f"no frame folder {folder}"):
            with open(os.path.join(folder, "nframes")) as f:
                nframes = int(f.read().strip())
            for k in (0, nframes - 1):
                frame = os.path.join(folder, "{}_{:03d}.jpeg".format(node, k))
                ck.check(os.path.isfile(frame), where, f"missing frame {frame}")
            summary["frame_folders"].add(node)

        no_repeats = res["noRepeats"][0, 0]
        try:
            repeat_range = range(no_repeats)
        except TypeError as e:
            ck.check(False, where, f"range(noRepeats) fails: {e}")
            repeat_range = range(int(no_repeats))
        ck.check(len(repeat_range) == len(exp["repeats"]) == reps.size, where,
                 f"noRepeats {no_repeats}, repeat has {reps.size}, expected {len(exp['repeats'])}")
        for r in repeat_range:
            rwhere = f"{where}.repeat{{{r + 1}}}"
            rexp = exp["repeats"][r]
            rep = reps[0, r][0, 0]
            data = field_at(rep, 4, "data", ck, rwhere)
            ck.check(is_int(rep["timeTag"]), rwhere,
                     f"timeTag is {dtype_of(rep['timeTag'])}, expected an integer type")
            ck.check(float(rep["timeTag"][0, 0]) == rexp["time_tag"], rwhere,
                     f"timeTag {rep['timeTag'][0, 0]} != {rexp['time_tag']}")
            ck.check(float(rep["tzero"][0, 0]) == rexp["tzero"], rwhere,
                     f"tzero {rep['tzero'][0, 0]} != {rexp['tzero']}")
            summary["repeats"] += 1
            for e in range(len(electrodes)):
                ewhere = f"{rwhere}.data{{{e + 1}}}"
                times = rep["data"][0][e][0][0]
                snippets = data[0][e][0][1]
                want = rexp["times"][e]
                got = [float(t) for t in np.asarray(times).flatten()]
                ck.check(got == want, ewhere, f"times {got[:5]}... != crate's {want[:5]}... "
                         f"({len(got)} vs {len(want)} events)")
                if want:
                    # MATLAB keeps fractional times double; only an all-whole-seconds list
                    # would be stored as integers, and then this crate stores it so too.
                    all_whole = all(float(t).is_integer() for t in want)
                    ck.check(times.dtype == np.float64 or (all_whole and is_int(times)), ewhere,
                             f"times are {times.dtype}, expected float64")
                    summary["float_time_lists"] += times.dtype == np.float64
                    samples = np.asarray(times, dtype=np.float64) * SAMPLE_RATE_HZ
                    ck.check(np.allclose(samples, np.round(samples), rtol=0, atol=1e-6), ewhere,
                             "times are not multiples of 1/30000 s")
                    ck.check(bool(np.all(np.diff(np.asarray(got)) >= 0)), ewhere, "times are not ascending")
                    ck.check(snippets.dtype == np.int8 and snippets.shape == (SNIPPET_LEN, len(want)), ewhere,
                             f"snippets are {snippets.shape} {snippets.dtype}, expected ({SNIPPET_LEN}, {len(want)}) int8")
                summary["events"] += len(got)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    tree, expected_path = sys.argv[1], sys.argv[2]
    with open(expected_path) as f:
        expected = json.load(f)
    ck = Checker()
    summary = {"files": 0, "movie_conditions": 0, "skipped_conditions": 0, "repeats": 0,
               "events": 0, "float_time_lists": 0, "frame_folders": set()}
    paths = sorted(glob.glob(os.path.join(tree, "neurodata", "*", "*.mat")))
    rels = [os.path.relpath(p, tree) for p in paths]
    ck.check(sorted(rels) == sorted(expected), tree,
             f"recordings found {rels}, the crate read {sorted(expected)}")
    for rel in rels:
        if rel in expected:
            read_file(tree, rel, expected[rel], ck, summary)
            summary["files"] += 1
    if ck.errors:
        shown = ck.errors[:40]
        print(f"{len(ck.errors)} problems a public pvc-1 reader would hit:", file=sys.stderr)
        for e in shown:
            print("  " + e, file=sys.stderr)
        if len(ck.errors) > len(shown):
            print(f"  ... and {len(ck.errors) - len(shown)} more", file=sys.stderr)
        sys.exit(1)
    summary["frame_folders"] = sorted(summary["frame_folders"])
    json.dump(summary, sys.stdout)
    print()


if __name__ == "__main__":
    main()
