#!/usr/bin/env python3
"""Opens the NWB files of `v1 export nwb` with pynwb and checks them against the pvc-1
tree they came from, read independently with scipy; then runs nwbinspector.

Usage:
  pynwb_check.py TREE NWB_DIR

TREE is the folder that holds `crcns-ringach-data/`. For every recording
`neurodata/<subdir>/<name>.mat` the file `NWB_DIR/sub-<subdir>_ses-<name>.nwb` must hold,
value by value:
- electrodes: `electrode_id` = `elec_list`, `rel_x`/`rel_y` = 400 um x (column, row) of the
  row-major 10x10 numbering, one electrode group on one device;
- trials: one row per (condition, repeat) of `listOfResults`, with start_time = tzero,
  movie/segment from `values` (-1 for a non-movie condition), repeat, condition and
  timeTag; rows in time order;
- units: one per electrode; its spike times = tzero + the event times of that electrode
  in every trial (to 1e-9 s), its waveforms = the 48-sample int8 snippets;
- frames: each movie trial's `timeseries` reference points into `movie_frames` at as
  many external files as the segment has frames, and they are the tree's own
  `movieMMM_SSS.images/movieMMM_SSS_KKK.jpeg` files, shown at tzero + k/30;
- with ground truth: a processing module whose descriptions say SIMULATED.
Then nwbinspector (with pynwb's validation) must report nothing CRITICAL or ERROR.
Prints a JSON summary and exits 0, or lists every problem and exits 1.
"""
import glob
import json
import os
import sys

import numpy as np
from scipy.io import loadmat
from pynwb import NWBHDF5IO

# The problem collector of the public-reader check of the .mat files.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "simulator", "tests"))
from public_reader import Checker  # noqa: E402

PITCH_UM = 400.0
FRAME_RATE_HZ = 30.0


def mat_recording(path):
    """(electrodes, conditions) from the .mat file, by field name, scipy defaults."""
    m = loadmat(path)["pepANA"][0, 0]
    electrodes = [int(e) for e in np.asarray(m["elec_list"]).flatten()]
    conditions = []
    lor = m["listOfResults"]
    for c in range(lor.shape[1]):
        res = lor[0, c][0, 0]
        symbols = [str(s[0]) for s in res["symbols"][0]]
        values = [float(v[0, 0]) for v in res["values"][0]]
        movie = (int(values[0]), int(values[1])) if "movie_id" in symbols else None
        reps = res["repeat"]
        repeats = []
        for r in range(reps.size):
            rep = reps[0, r][0, 0]
            times = [np.asarray(rep["data"][0][e][0][0], dtype=np.float64).flatten() for e in range(len(electrodes))]
            snippets = [np.asarray(rep["data"][0][e][0][1]) for e in range(len(electrodes))]
            repeats.append({"tzero": float(rep["tzero"][0, 0]), "time_tag": float(rep["timeTag"][0, 0]),
                            "times": times, "snippets": snippets})
        conditions.append({"movie": movie, "condition": float(res["condition"][0, 0]), "repeats": repeats})
    return electrodes, conditions


def check_file(tree, mat_path, nwb_path, ck, summary):
    where = os.path.basename(nwb_path)
    electrodes, conditions = mat_recording(mat_path)
    if not ck.check(os.path.isfile(nwb_path), where, "missing"):
        return
    with NWBHDF5IO(nwb_path, "r") as io:
        nwb = io.read()
        # Electrodes.
        el = nwb.electrodes.to_dataframe()
        ck.check(list(el["electrode_id"]) == electrodes, where, f"electrode_id {list(el['electrode_id'])} != elec_list {electrodes}")
        for eid, x, y in zip(el["electrode_id"], el["rel_x"], el["rel_y"]):
            ck.check(x == ((eid - 1) % 10) * PITCH_UM and y == ((eid - 1) // 10) * PITCH_UM, where,
                     f"electrode {eid} at ({x}, {y}) um")
        ck.check(len(nwb.electrode_groups) == 1 and len(nwb.devices) == 1, where, "expected one electrode group on one device")

        # Trials.
        tr = nwb.trials.to_dataframe()
        want_rows = sum(len(c["repeats"]) for c in conditions)
        ck.check(len(tr) == want_rows, where, f"{len(tr)} trials, the .mat has {want_rows} presentations")
        ck.check(bool(np.all(np.diff(tr["start_time"].to_numpy()) > 0)), where, "trials not in time order")
        by_key = {(int(r.condition_index), int(r.repeat)): r for r in tr.itertuples()}
        frames = nwb.stimulus["movie_frames"]
        external = list(frames.external_file[:])
        frame_times = np.asarray(frames.timestamps[:])
        ck.check(frames.format == "external" and len(external) == len(frame_times), where, "movie_frames is not an external ImageSeries with a time per frame")
        for ci, cond in enumerate(conditions):
            for ri, rep in enumerate(cond["repeats"]):
                row = by_key.get((ci, ri))
                cwhere = f"{where} condition {ci} repeat {ri}"
                if not ck.check(row is not None, cwhere, "no trial row"):
                    continue
                ck.check(row.start_time == rep["tzero"], cwhere, f"start_time {row.start_time} != tzero {rep['tzero']}")
                ck.check(row.time_tag == rep["time_tag"] and row.condition == cond["condition"], cwhere, "timeTag or condition differs")
                movie = cond["movie"]
                if movie is None:
                    ck.check(row.movie == -1 and row.segment == -1, cwhere, "non-movie condition not marked -1")
                    continue
                ck.check((row.movie, row.segment) == movie, cwhere, f"movie/segment {(row.movie, row.segment)} != values {movie}")
                node = "movie{:03d}_{:03d}".format(*movie)
                folder = os.path.join(tree, "crcns-ringach-data", "movie_frames", node + ".images")
                with open(os.path.join(folder, "nframes")) as f:
                    nframes = int(f.read().strip())
                refs = row.timeseries
                if not ck.check(len(refs) == 1, cwhere, f"{len(refs)} timeseries references"):
                    continue
                ref = refs[0]
                ck.check(ref.timeseries.name == "movie_frames" and ref.count == nframes, cwhere,
                         f"frames reference {ref.timeseries.name} count {ref.count}, segment has {nframes}")
                for k in range(0, nframes, max(1, nframes // 7)):
                    f = os.path.normpath(os.path.join(os.path.dirname(nwb_path), external[ref.idx_start + k]))
                    want = os.path.join(folder, "{}_{:03d}.jpeg".format(node, k))
                    ck.check(os.path.samefile(f, want) if os.path.exists(f) else False, cwhere, f"frame {k} is {f}, expected {want}")
                    ck.check(abs(frame_times[ref.idx_start + k] - (rep["tzero"] + k / FRAME_RATE_HZ)) < 1e-9, cwhere, f"frame {k} time")
                summary["frame_refs"] += 1

        # Units: spike times and snippets.
        units = nwb.units
        ck.check(len(units) == len(electrodes), where, f"{len(units)} units for {len(electrodes)} electrodes")
        order = sorted(((c, r) for c, cond in enumerate(conditions) for r in range(len(cond["repeats"]))),
                       key=lambda k: conditions[k[0]]["repeats"][k[1]]["tzero"])
        for e in range(min(len(units), len(electrodes))):
            uwhere = f"{where} unit {e}"
            got = np.asarray(units.get_unit_spike_times(e), dtype=np.float64)
            want = np.concatenate([conditions[c]["repeats"][r]["tzero"] + conditions[c]["repeats"][r]["times"][e] for c, r in order]) if order else np.zeros(0)
            if ck.check(got.shape == want.shape, uwhere, f"{got.size} spikes, the .mat has {want.size}"):
                ck.check(bool(np.all(np.abs(got - want) < 1e-9)), uwhere, "spike times differ from tzero + event times")
            row_el = units["electrodes"][e]
            ck.check(list(row_el["electrode_id"]) == [electrodes[e]], uwhere, "unit's electrode differs")
            waves = units["waveforms"][e]
            want_w = np.concatenate([conditions[c]["repeats"][r]["snippets"][e].reshape(48, -1).T for c, r in order]) if order else np.zeros((0, 48))
            got_w = np.asarray([np.asarray(w).reshape(-1) for w in waves]).reshape(-1, 48) if len(waves) else np.zeros((0, 48))
            ck.check(got_w.shape == want_w.shape and np.array_equal(got_w.astype(np.int64), want_w.astype(np.int64)), uwhere,
                     f"waveforms {got_w.shape} differ from the snippets {want_w.shape}")
            summary["spikes"] += int(got.size)
        if "simulated_ground_truth" in nwb.processing:
            gt = nwb.processing["simulated_ground_truth"]
            ck.check("SIMULATED" in gt.description and "SIMULATED" in nwb.session_description, where, "ground truth not marked SIMULATED")
            rates = gt["noise_free_rates"]
            ck.check(rates.data.shape == (len(frame_times), len(electrodes)), where, f"noise_free_rates shape {rates.data.shape}")
            summary["ground_truth_files"] += 1
    summary["files"] += 1


def inspect(nwb_dir, ck, summary):
    from nwbinspector import inspect_all, Importance
    for msg in inspect_all(path=nwb_dir):
        summary["inspector_messages"] += 1
        bad = msg.importance in (Importance.CRITICAL, Importance.ERROR, getattr(Importance, "PYNWB_VALIDATION", Importance.ERROR))
        ck.check(not bad, f"nwbinspector {msg.file_path}", f"{msg.importance.name} {msg.check_function_name}: {msg.message}")


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    tree, nwb_dir = sys.argv[1], sys.argv[2]
    ck = Checker()
    summary = {"files": 0, "spikes": 0, "frame_refs": 0, "ground_truth_files": 0, "inspector_messages": 0}
    mats = sorted(glob.glob(os.path.join(tree, "crcns-ringach-data", "neurodata", "*", "*.mat")))
    ck.check(len(mats) > 0, tree, "no recordings")
    for mat in mats:
        subdir = os.path.basename(os.path.dirname(mat))
        name = os.path.splitext(os.path.basename(mat))[0]
        check_file(tree, mat, os.path.join(nwb_dir, f"sub-{subdir}_ses-{name}.nwb"), ck, summary)
    inspect(nwb_dir, ck, summary)
    if ck.errors:
        print(f"{len(ck.errors)} problems:", file=sys.stderr)
        for e in ck.errors[:40]:
            print("  " + e, file=sys.stderr)
        sys.exit(1)
    json.dump(summary, sys.stdout)
    print()


if __name__ == "__main__":
    main()
