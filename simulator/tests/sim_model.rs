//! The simulated population in memory: maps, tuning, rates, latency, noise correlations.

use v1_sim::population::{CellType, Population};
use v1_sim::response::{self, Model};
use v1_sim::spikes::{self, TrialKey};
use v1_sim::stimuli::{self, StimulusSource};
use v1_sim::PopulationParams;

fn calibrated(seed: u64, latency: usize) -> (Population, Model) {
    let params = PopulationParams::default();
    let mut pop = Population::generate(seed, &params);
    let model = Model::new(&pop, latency, 320, 240);
    let calib: Vec<Vec<Vec<f32>>> = stimuli::calibration_scenes(seed, params.calibration_scenes, params.calibration_scene_frames)
        .iter()
        .map(|scene| scene.iter().map(stimuli::luminance).collect())
        .collect();
    response::calibrate(&mut pop, &model, &calib);
    (pop, model)
}

fn cos2(a_deg: f64, b_deg: f64) -> f64 {
    (2.0 * (a_deg - b_deg).to_radians()).cos()
}

#[test]
fn orientation_map_is_smooth_with_pinwheels() {
    let pop = Population::generate(21, &PopulationParams::default());
    let map = &pop.orientation_map;
    // Adjacent samples 0.05 mm apart share their preference; 0.35 mm (half a column
    // period) apart they do not.
    let (mut near, mut half, mut n) = (0.0, 0.0, 0.0);
    for i in 0..40 {
        for j in 0..40 {
            let (x, y) = (-1.8 + 0.09 * i as f64, -1.8 + 0.09 * j as f64);
            let (a, _) = map.at(x, y);
            near += cos2(a, map.at(x + 0.05, y).0);
            half += cos2(a, map.at(x + 0.35, y).0);
            n += 1.0;
        }
    }
    let (near, half) = (near / n, half / n);
    eprintln!("orientation similarity cos(2 dtheta): 0.05 mm {near:.2}, 0.35 mm {half:.2}");
    assert!(near > 0.8, "map not smooth: {near}");
    assert!(half < 0.2, "map has no columns at the stated period: {half}");

    // Units on one electrode share the map's preference.
    let (mut same, mut pairs) = (0.0, 0.0);
    for e in pop.good_electrodes() {
        for (k, &a) in e.units.iter().enumerate() {
            for &b in &e.units[k + 1..] {
                same += cos2(pop.units[a].orientation_deg, pop.units[b].orientation_deg);
                pairs += 1.0;
            }
        }
    }
    assert!(same / pairs > 0.5, "units on one electrode disagree: {}", same / pairs);

    // Tuning is broader near pinwheels (low map selectivity).
    let xs: Vec<(f64, f64)> = pop
        .good_electrodes()
        .flat_map(|e| e.units.iter().map(move |&u| (e.map_selectivity, u)))
        .map(|(s, u)| (s, pop.units[u].orientation_halfwidth_deg))
        .collect();
    let r = pearson(&xs);
    assert!(r < -0.3, "half-width vs selectivity correlation {r}");
}

#[test]
fn units_follow_ringach_2002() {
    let pop = Population::generate(5, &PopulationParams::default());
    let n = pop.units.len() as f64;
    let simple = pop.units.iter().filter(|u| u.kind == CellType::Simple).count() as f64 / n;
    // 12% simple: the supragranular layers a Utah array records from are mostly complex
    // (Ringach, Shapley & Hawken 2002), though 40% of all V1 cells are simple.
    assert!((0.05..=0.25).contains(&simple), "simple fraction {simple}");
    let mut sf: Vec<f64> = pop.units.iter().map(|u| u.sf_cpd).collect();
    sf.sort_by(f64::total_cmp);
    let median = sf[sf.len() / 2];
    assert!((2.0..=4.0).contains(&median), "median SF {median}");
    assert!(sf[0] >= 1.0 && sf[sf.len() - 1] <= 8.0);
    for u in &pop.units {
        let size_deg = u.rf_size_px / 32.0;
        assert!((0.3..=1.0 + 1e-9).contains(&size_deg));
        // SF bandwidth from n_x = sigma * f: 1.1–1.9 octaves around the median 1.4.
        let n_x = u.sigma_across_px / 32.0 * u.sf_cpd;
        let d = (2.0 * 2f64.ln()).sqrt() / (std::f64::consts::TAU * n_x);
        let octaves = ((1.0 + d) / (1.0 - d)).log2();
        assert!((1.0..=2.2).contains(&octaves), "SF bandwidth {octaves} octaves");
    }
}

#[test]
fn rates_have_the_stated_spontaneous_and_peak_levels() {
    let (pop, model) = calibrated(9, 2);
    let mut maxima = Vec::new();
    for seg in 0..3u16 {
        let frames = StimulusSource::DeadLeaves.segment(9, 0, seg, seg as usize, 150).unwrap();
        let lum: Vec<Vec<f32>> = frames.iter().map(stimuli::luminance).collect();
        let rates = response::unit_rates(&pop, &model.drive(&lum));
        for (u, unit) in pop.units.iter().enumerate() {
            let v: Vec<f64> = rates.iter().map(|r| r[u] as f64).collect();
            let min = v.iter().cloned().fold(f64::INFINITY, f64::min);
            let max = v.iter().cloned().fold(0.0, f64::max);
            assert!(min >= unit.spontaneous_hz - 1e-3, "rate below spontaneous");
            assert!((min - unit.spontaneous_hz).abs() < 1e-3, "the blank onset gives the spontaneous rate");
            maxima.push(max);
        }
    }
    maxima.sort_by(f64::total_cmp);
    let median = maxima[maxima.len() / 2];
    let q10 = maxima[maxima.len() / 10];
    let q90 = maxima[maxima.len() * 9 / 10];
    eprintln!("per-unit peak rate over 5 s movies: 10% {q10:.1}, median {median:.1}, 90% {q90:.1} sp/s");
    // Peaks of 8–35 sp/s, scaled by each unit's responsiveness (0.04–1) and its site's
    // (0.25–1), both log-uniform: most units respond weakly to natural movies, a few well.
    assert!((4.0..=30.0).contains(&median), "median peak {median}");
    assert!(q10 > 0.3 && q90 > 2.0 * median && q90 < 60.0, "peak range {q10}..{q90}");
}

/// Rates in bin t depend on frames t - latency - j only: a stimulus that appears at frame
/// 10 changes no rate before bin 10 + latency, a few at it (units start 8–30 ms after the
/// latency), and far more one or two bins later (the kernels' peaks).
#[test]
fn planted_latency_is_exact() {
    for latency in [2usize, 4] {
        let (pop, model) = calibrated(3, latency);
        let movie = StimulusSource::DeadLeaves.segment(3, 1, 1, 4, 20).unwrap();
        let gray = vec![0.45f32; 320 * 240];
        let lum: Vec<Vec<f32>> = (0..20).map(|t| if t < 10 { gray.clone() } else { stimuli::luminance(&movie[t]) }).collect();
        let rates = response::unit_rates(&pop, &model.drive(&lum));
        for (t, row) in rates.iter().enumerate().take(10 + latency) {
            for (r, unit) in row.iter().zip(&pop.units) {
                assert!((*r as f64 - unit.spontaneous_hz).abs() < 1e-3, "latency {latency}: bin {t} responds early");
            }
        }
        // Population driven rate (above spontaneous).
        let driven = |t: usize| pop.units.iter().enumerate().map(|(u, unit)| rates[t][u] as f64 - unit.spontaneous_hz).sum::<f64>();
        let (onset, peak) = (driven(10 + latency), driven(11 + latency));
        eprintln!("latency {latency}: population driven rate {onset:.0} sp/s at the onset bin, {peak:.0} one bin later");
        let peak = peak.max(driven(12 + latency));
        assert!(onset > 1.0, "latency {latency}: no response at the onset bin ({onset})");
        assert!(peak > 2.0 * onset, "latency {latency}: the response should peak after the onset bin ({onset} -> {peak})");
    }
}

/// A grating at a unit's preferred orientation drives it far more than the orthogonal one.
#[test]
fn units_are_orientation_tuned() {
    let (pop, model) = calibrated(4, 0);
    let grating = |ori: f64, sf_cpd: f64, phase: f64| -> Vec<f32> {
        let psi = (ori + 90.0).to_radians();
        let f = sf_cpd / 32.0;
        (0..240)
            .flat_map(|y| {
                (0..320).map(move |x| {
                    let (dx, dy) = (x as f64 + 0.5, -(y as f64 + 0.5));
                    let xp = dx * psi.cos() + dy * psi.sin();
                    (0.5 * (1.0 + 0.5 * (std::f64::consts::TAU * f * xp + phase).cos())) as f32
                })
            })
            .collect()
    };
    let mut wins = 0;
    let units: Vec<usize> = (0..pop.units.len()).step_by(7).collect();
    for &u in &units {
        let unit = &pop.units[u];
        let response = |ori: f64| -> f64 {
            // Drifting: 8 phases, one per frame; mean rate over the last 4 bins.
            let frames: Vec<Vec<f32>> = (0..8).map(|k| grating(ori, unit.sf_cpd, k as f64 * std::f64::consts::TAU / 8.0)).collect();
            let r = response::unit_rates(&pop, &model.drive(&frames));
            r[4..].iter().map(|row| row[u] as f64).sum::<f64>() / 4.0
        };
        let pref = response(unit.orientation_deg);
        let orth = response(unit.orientation_deg + 90.0);
        if pref - unit.spontaneous_hz > 3.0 * (orth - unit.spontaneous_hz).max(0.1) {
            wins += 1;
        }
    }
    assert!(wins * 10 >= units.len() * 8, "{wins} of {} units prefer their orientation", units.len());
}

/// Shared slow gain: neighbouring electrodes are more correlated than distant ones, with
/// count correlations in the ~0.1–0.2 range reported for anaesthetised V1.
#[test]
fn noise_correlations_fall_with_distance() {
    let (pop, _) = calibrated(12, 2);
    // Constant rates (8 sp/s per unit, ~30 sp/s multi-unit): every fluctuation is noise.
    let nframes = 30;
    let rates: Vec<Vec<f32>> = vec![pop.units.iter().map(|_| 8.0f32).collect(); nframes];
    let good: Vec<u16> = pop.good_electrodes().map(|e| e.id).collect();
    let trials = 300;
    let counts: Vec<Vec<f64>> = (0..trials)
        .map(|t| {
            let ev = spikes::trial_events(&pop, &rates, &vec![1.0; rates.len()], &good, 12, TrialKey { movie: 0, segment: 0, file: 0, trial: t as u16 });
            ev.iter().map(|e| e.times.len() as f64).collect()
        })
        .collect();
    let (mut near, mut far) = (Vec::new(), Vec::new());
    for a in 0..good.len() {
        for b in a + 1..good.len() {
            let (ea, eb) = (&pop.electrodes[good[a] as usize - 1], &pop.electrodes[good[b] as usize - 1]);
            let d = ((ea.cortex_mm[0] - eb.cortex_mm[0]).powi(2) + (ea.cortex_mm[1] - eb.cortex_mm[1]).powi(2)).sqrt();
            let xs: Vec<(f64, f64)> = counts.iter().map(|c| (c[a], c[b])).collect();
            let r = pearson(&xs);
            if d < 0.6 {
                near.push(r);
            } else if d > 2.5 {
                far.push(r);
            }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (n, f) = (mean(&near), mean(&far));
    eprintln!("count correlations (1 s): neighbours {n:.3}, > 2.5 mm {f:.3}");
    assert!((0.08..=0.3).contains(&n), "neighbour correlation {n}");
    assert!(f < n - 0.03, "distant pairs {f} vs neighbours {n}");
}

/// Pearson r of the pairs, by the metrics crate's definition.
fn pearson(xs: &[(f64, f64)]) -> f64 {
    let (a, b): (Vec<f64>, Vec<f64>) = xs.iter().copied().unzip();
    v1_metrics::pearson_r(&a, &b).expect("finite, non-empty pairs")
}
