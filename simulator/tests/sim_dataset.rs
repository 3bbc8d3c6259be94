//! The `Small` simulated dataset, written once and read back like real pvc-1 data:
//! layout, file mix, events, ground truth, and the statistics the science guide asks for.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use neural_data::pvc1::{self, ConditionKind, Pvc1Tree, Recording, FRAME_RATE_HZ, SAMPLE_RATE_HZ};
use v1_sim::{simulate, GroundTruth, Preset, SimConfig, SimSummary};

const SEED: u64 = 7;

struct Fixture {
    out: PathBuf,
    summary: SimSummary,
    tree: Pvc1Tree,
    truth: GroundTruth,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sim_dataset_small");
        let mut cfg = SimConfig::preset(Preset::Small, SEED);
        cfg.progress = false;
        cfg.overwrite = true;
        let summary = simulate(&out, &cfg).expect("simulate Small");
        let tree = pvc1::read_tree(&out).expect("read the simulated tree back");
        let truth = GroundTruth::load(&out).expect("load ground truth");
        Fixture { out, summary, tree, truth }
    })
}

fn single_trial(tree: &Pvc1Tree) -> Vec<&Recording> {
    tree.recordings.iter().filter(|r| r.conditions.iter().all(|c| c.repeats.len() == 1)).collect()
}

fn repeat_file(tree: &Pvc1Tree) -> &Recording {
    let r: Vec<&Recording> = tree.recordings.iter().filter(|r| r.conditions.iter().any(|c| c.repeats.len() > 1)).collect();
    assert_eq!(r.len(), 1, "exactly one repeat file");
    r[0]
}

#[test]
fn layout_matches_pvc1() {
    let f = fixture();
    let data = f.out.join("crcns-ringach-data");
    assert!(data.join("movie_frames").is_dir() && data.join("neurodata/ac1").is_dir());
    assert!(f.out.join("ground_truth/truth.json").is_file());
    assert!(f.out.join("ground_truth/rates.safetensors").is_file());
    assert!(f.out.join("ground_truth/COMPLETE").is_file());
    assert!(!data.join("ground_truth").exists(), "ground truth must live beside the tree, not in it");
    let leftovers: Vec<_> = std::fs::read_dir(&f.out).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with('.')).collect();
    assert!(leftovers.is_empty(), "staging folders left behind: {leftovers:?}");

    assert_eq!(f.tree.segments.len(), 6);
    for m in 0..2u16 {
        for s in 0..3u16 {
            let seg = f.tree.segment(m, s).expect("segment folder");
            assert_eq!(seg.nframes, 60);
            assert_eq!(seg.dir.file_name().unwrap().to_string_lossy(), format!("movie{m:03}_{s:03}.images"));
            let nframes = std::fs::read_to_string(seg.dir.join("nframes")).unwrap();
            assert_eq!(nframes.trim(), "60");
            let img = seg.load_frame(59).expect("last frame decodes");
            assert_eq!((img.width(), img.height()), (320, 240));
            assert!(seg.frame_path(0).to_string_lossy().ends_with(&format!("movie{m:03}_{s:03}_000.jpeg")));
        }
    }
    let names: BTreeSet<String> = f.tree.recordings.iter().map(|r| r.name.clone()).collect();
    let expected: BTreeSet<String> = (4..=8).map(|u| format!("ac1_u{u:03}_000")).collect();
    assert_eq!(names, expected);
    // 6 segments x 60 frames + nframes files, 5 recordings, 3 ground-truth files.
    assert_eq!(f.summary.files, 6 * 61 + 5 + 3);
    assert_eq!(f.summary.frames, 360);
    assert!(f.summary.bytes > 1_000_000 && f.summary.events > 10_000, "{:?}", f.summary);
}

#[test]
fn file_mix_is_like_the_real_data() {
    let f = fixture();
    let singles = single_trial(&f.tree);
    assert_eq!(singles.len(), 4);
    let mut all = Vec::new();
    for r in &singles {
        assert!((5..=33).contains(&r.electrodes.len()), "{} has {} electrodes", r.name, r.electrodes.len());
        assert!(r.electrodes.windows(2).all(|w| w[0] < w[1]), "elec_list ascending");
        all.extend(r.electrodes.iter().copied());
        // Every movie segment plus exactly one non-movie `rseed` condition.
        let movies: BTreeSet<(u16, u16)> = r.movie_conditions().map(|(m, s, _)| (m, s)).collect();
        assert_eq!(movies.len(), 6);
        let others: Vec<_> = r.conditions.iter().filter(|c| matches!(c.kind, ConditionKind::Other { .. })).collect();
        assert_eq!(others.len(), 1);
        match &others[0].kind {
            ConditionKind::Other { symbols, .. } => assert_eq!(symbols[0], "rseed"),
            ConditionKind::Movie { .. } => unreachable!(),
        }
    }
    all.sort_unstable();
    assert_eq!(all, (1..=100).collect::<Vec<u16>>(), "single-trial files partition the array");

    let rep = repeat_file(&f.tree);
    assert_eq!(rep.electrodes.len(), 23);
    let movies: BTreeSet<(u16, u16)> = rep.movie_conditions().map(|(m, s, _)| (m, s)).collect();
    assert_eq!(movies, [(0, 0), (0, 1), (1, 0), (1, 1)].into_iter().collect());
    assert!(rep.conditions.iter().all(|c| c.repeats.len() == 10));
    let good: BTreeSet<u16> = f.truth.truth.electrodes.iter().filter(|e| e.good).map(|e| e.id).collect();
    let n_good = rep.electrodes.iter().filter(|id| good.contains(id)).count();
    assert!(n_good >= 12, "repeat file has {n_good} good electrodes");
}

#[test]
fn events_are_well_formed_and_trials_are_ordered() {
    let f = fixture();
    let duration = 60.0 / FRAME_RATE_HZ;
    for r in &f.tree.recordings {
        let mut trials: Vec<(f64, f64)> = Vec::new();
        for c in &r.conditions {
            for t in &c.repeats {
                trials.push((t.time_tag, t.tzero));
                assert_eq!(t.electrodes.len(), r.electrodes.len());
                for ev in &t.electrodes {
                    assert_eq!(ev.times.len(), ev.snippets.len());
                    assert!(ev.times.windows(2).all(|w| w[0] <= w[1]), "times ascending");
                    for &x in &ev.times {
                        assert!((0.0..duration).contains(&x), "time {x} outside the trial");
                        let k = x * SAMPLE_RATE_HZ;
                        assert!((k - k.round()).abs() < 1e-6, "time {x} is not on the 30 kHz grid");
                    }
                }
            }
        }
        // timeTag numbers trials 0.. in presentation order, and tzero increases with it.
        trials.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (i, w) in trials.iter().enumerate() {
            assert_eq!(w.0, i as f64);
        }
        assert!(trials.windows(2).all(|w| w[1].1 >= w[0].1 + duration), "{}: tzero must increase by at least a trial", r.name);
    }
}

#[test]
fn ground_truth_matches_the_tree() {
    let f = fixture();
    let t = &f.truth.truth;
    assert_eq!(t.seed, SEED);
    assert_eq!(t.preset, "small");
    assert_eq!(t.latency_frames, 3);
    assert!(t.peak_lag_frames >= t.latency_frames && t.peak_lag_frames <= t.latency_frames + 2);
    assert_eq!(t.frame_size, [320, 240]);
    assert_eq!(t.pixels_per_degree, 32.0);
    assert_eq!(t.electrodes.len(), 100);
    assert_eq!(t.electrodes.iter().filter(|e| e.good).count(), 50);

    // Footprint: inside the frame, off-centre towards (200, 140), about 100 px across.
    let [x, y, w, h] = t.footprint_px;
    assert!(x >= 0.0 && y >= 0.0 && x + w <= 320.0 && y + h <= 240.0);
    assert!((80.0..=150.0).contains(&w) && (80.0..=150.0).contains(&h), "footprint {w}x{h}");
    let (cx, cy) = (x + w / 2.0, y + h / 2.0);
    eprintln!("footprint {:?}, peak lag {}", t.footprint_px, t.peak_lag_frames);
    assert!((cx - 200.0).abs() < 20.0 && (cy - 140.0).abs() < 20.0, "footprint centre ({cx}, {cy})");

    for e in &t.electrodes {
        let (row, col) = pvc1::electrode_position(e.id).unwrap();
        assert_eq!((e.row, e.col), (row, col));
        assert_eq!(e.good, !e.units.is_empty());
        assert_eq!(e.rf_center_px.is_some(), e.good);
        assert!(!e.files.is_empty(), "electrode {} is in no file", e.id);
        for name in &e.files {
            let rec = f.tree.recordings.iter().find(|r| &r.name == name).unwrap();
            assert!(rec.electrodes.contains(&e.id));
        }
        if let Some([rx, ry]) = e.rf_center_px {
            assert!(rx > x && rx < x + w && ry > y && ry < y + h, "RF of {} outside the footprint", e.id);
        }
    }

    let segs: Vec<(u16, u16)> = f.truth.segments().collect();
    assert_eq!(segs.len(), 6);
    for (m, s) in segs {
        let r = f.truth.rates(m, s).unwrap();
        assert_eq!(r.nframes, 60);
        for e in &t.electrodes {
            let v = r.electrode(e.id).unwrap();
            if e.good {
                let spont: f64 = e.units.iter().map(|u| u.unit.spontaneous_hz).sum::<f64>() / FRAME_RATE_HZ;
                // Before the latency only spontaneous activity is possible.
                for &x in &v[..t.latency_frames as usize] {
                    assert!((x as f64 - spont).abs() < 1e-4, "electrode {} bin before latency: {x} vs spont {spont}", e.id);
                }
                assert!(v.iter().all(|&x| x as f64 >= spont - 1e-4));
            } else {
                assert!(v.iter().all(|&x| x == 0.0), "noise-only electrode {} has a rate", e.id);
            }
        }
    }
}

#[test]
fn firing_rates_are_in_the_stated_ranges() {
    let f = fixture();
    let t = &f.truth.truth;
    let p = v1_sim::PopulationParams::default();
    for e in t.electrodes.iter().filter(|e| e.good) {
        assert!((p.units_per_electrode[0]..=p.units_per_electrode[1]).contains(&e.units.len()));
        for u in &e.units {
            assert!((p.spontaneous_hz[0]..=p.spontaneous_hz[1]).contains(&u.unit.spontaneous_hz));
            assert!((p.peak_hz[0]..=p.peak_hz[1]).contains(&u.unit.peak_hz));
        }
    }
    // Observed multi-unit rates: single-trial files, all movie conditions.
    let mut good_rates = Vec::new();
    let mut bad_excess = Vec::new();
    for r in single_trial(&f.tree) {
        for (i, id) in r.electrodes.iter().enumerate() {
            let e = &t.electrodes[*id as usize - 1];
            let (mut n, mut secs) = (0usize, 0.0);
            for c in r.conditions.iter().filter(|c| matches!(c.kind, ConditionKind::Movie { .. })) {
                n += c.repeats[0].electrodes[i].times.len();
                secs += 60.0 / FRAME_RATE_HZ;
            }
            let rate = n as f64 / secs;
            if e.good {
                good_rates.push(rate - e.noise_crossing_hz);
            } else {
                bad_excess.push(rate - e.noise_crossing_hz);
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let good = median(&mut good_rates);
    let bad = median(&mut bad_excess);
    // Multi-unit activity in the real pvc-1 range (5–30 events/s, docs/twin.md).
    assert!((5.0..=30.0).contains(&good), "median good-electrode spike rate {good}");
    // Noise-only electrodes fire at their noise-crossing rate.
    assert!(bad.abs() < 2.0, "noise-only electrodes: median excess {bad}");

    // Noise-free rates: every good electrode is driven well above its spontaneous level
    // somewhere in the movies (its units peak at 8–35 sp/s each, scaled by their
    // responsiveness).
    let mut peaks = Vec::new();
    for e in t.electrodes.iter().filter(|e| e.good) {
        let spont: f64 = e.units.iter().map(|u| u.unit.spontaneous_hz).sum();
        let max = f.truth.segments().flat_map(|(m, s)| f.truth.rates(m, s).unwrap().electrode(e.id).unwrap()).fold(0f32, f32::max);
        peaks.push(max as f64 * FRAME_RATE_HZ - spont);
    }
    let p = median(&mut peaks);
    eprintln!("median spike rate of good electrodes {good:.1}/s, noise-only excess {bad:.2}/s, median driven peak of good electrodes {p:.1}/s");
    assert!((20.0..=250.0).contains(&p), "median driven peak of good electrodes {p}");
    assert!(peaks[0] > 5.0, "an electrode is never driven: {}", peaks[0]);
}

/// Fano factor of multi-unit counts in 1/3 s windows over the 10 repeats: ~1.5–2 for V1
/// units under anaesthesia (Goris et al. 2014; Smith & Kohn 2008), more for the bursty
/// multi-unit activity of the real files (ISI CV ~2.2, docs/twin.md): 2–2.7 here.
#[test]
fn fano_factor_over_repeats() {
    let f = fixture();
    let t = &f.truth.truth;
    let rep = repeat_file(&f.tree);
    let window = 10usize;
    let mut good_ff = Vec::new();
    // Noise-only electrodes fire ~1 event/s: their variance and mean are pooled over all
    // windows instead.
    let (mut bad_var, mut bad_mean) = (0f64, 0f64);
    for c in rep.conditions.iter().filter(|c| matches!(c.kind, ConditionKind::Movie { .. })) {
        for (i, id) in rep.electrodes.iter().enumerate() {
            for w in 0..60 / window {
                let (lo, hi) = ((w * window) as f64 / FRAME_RATE_HZ, ((w + 1) * window) as f64 / FRAME_RATE_HZ);
                let counts: Vec<f64> = c
                    .repeats
                    .iter()
                    .map(|tr| tr.electrodes[i].times.iter().filter(|&&x| x >= lo && x < hi).count() as f64)
                    .collect();
                let n = counts.len() as f64;
                let mean = counts.iter().sum::<f64>() / n;
                let var = counts.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
                if !t.electrodes[*id as usize - 1].good {
                    bad_var += var;
                    bad_mean += mean;
                } else if mean >= 2.0 {
                    good_ff.push(var / mean);
                }
            }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (g, b) = (mean(&good_ff), bad_var / bad_mean);
    eprintln!("Fano factor (1/3 s windows, 10 repeats): good electrodes {g:.2} ({} windows), noise-only {b:.2}", good_ff.len());
    assert!(good_ff.len() > 100, "too few windows: {}", good_ff.len());
    assert!((1.3..=2.8).contains(&g), "mean Fano factor of good electrodes {g} over {} windows", good_ff.len());
    // Noise crossings are plain Poisson.
    assert!(bad_mean > 10.0 && (0.7..=1.3).contains(&b), "pooled Fano factor of noise-only electrodes {b} (summed mean {bad_mean})");
}

/// Snippets: spikes (troughs -60..-110) and noise crossings (~-30) form two clusters, and
/// every event crosses threshold near sample 10.
#[test]
fn spike_and_noise_snippets_separate() {
    let f = fixture();
    let t = &f.truth.truth;
    let (mut bad_troughs, mut good_troughs) = (Vec::new(), Vec::new());
    for r in single_trial(&f.tree) {
        for (i, id) in r.electrodes.iter().enumerate() {
            for c in &r.conditions {
                for s in &c.repeats[0].electrodes[i].snippets {
                    let min = *s.iter().min().unwrap() as f64;
                    assert!(s[9..=12].iter().any(|&v| v <= -22), "no threshold crossing near sample 10: {s:?}");
                    if t.electrodes[*id as usize - 1].good {
                        good_troughs.push(min);
                    } else {
                        bad_troughs.push(min);
                    }
                }
            }
        }
    }
    let below = |v: &[f64], th: f64| v.iter().filter(|&&x| x < th).count() as f64 / v.len() as f64;
    // Noise-only electrodes: nearly all troughs above -50.
    assert!(below(&bad_troughs, -50.0) < 0.01, "noise troughs below -50: {}", below(&bad_troughs, -50.0));
    // Good electrodes: a spike cluster below -50 and a noise cluster above, few in between.
    let spikes = below(&good_troughs, -50.0);
    let between = below(&good_troughs, -50.0) - below(&good_troughs, -58.0);
    assert!(spikes > 0.4 && spikes < 0.95, "fraction of spike-like events {spikes}");
    assert!(between < 0.08, "events in the gap between clusters {between}");
    // The spike fraction matches the truth: expected spikes / (spikes + noise crossings).
    let mut exp_spikes = 0.0;
    let mut exp_noise = 0.0;
    for r in single_trial(&f.tree) {
        for id in &r.electrodes {
            let e = &t.electrodes[*id as usize - 1];
            if !e.good {
                continue;
            }
            for (m, s) in f.truth.segments() {
                exp_spikes += f.truth.rates(m, s).unwrap().electrode(*id).unwrap().iter().map(|x| *x as f64).sum::<f64>();
                exp_noise += e.noise_crossing_hz * 2.0;
            }
            let spont: f64 = e.units.iter().map(|u| u.unit.spontaneous_hz).sum();
            exp_spikes += spont * 2.0; // the rseed condition
            exp_noise += e.noise_crossing_hz * 2.0;
        }
    }
    let expected = exp_spikes / (exp_spikes + exp_noise);
    eprintln!("spike-like fraction {spikes:.3} (expected {expected:.3}), in the gap {between:.4}, noise below -50 {:.4}", below(&bad_troughs, -50.0));
    assert!((spikes - expected).abs() < 0.05, "spike fraction {spikes} vs expected {expected}");
}
