//! Receptive fields and latency from spike-triggered averages.
//!
//! V1 complex cells are phase-invariant, so a plain pixel STA averages to nothing for
//! most of the population. We therefore average *local contrast energy* (the squared
//! difference between a pixel and its neighbourhood mean), which every V1 cell with an RF
//! at that place responds to, whatever its phase preference. Maps are computed on a coarse
//! grid (the de-interlaced frame divided into `cell`x`cell` blocks) to keep the estimate
//! fast: the footprint only needs a few-pixel accuracy.

/// Contrast-energy map of a grayscale image (row-major, `width` x `height`, values in
/// [0,1]) on a grid of `cell`-pixel blocks: mean over each block of (p - local mean)^2,
/// where the local mean is taken over the 5x5 neighbourhood (on the de-interlaced frame,
/// periods up to ~10 pixels, i.e. the 1–8 c/deg of V1 cells at 32 px/deg).
pub fn energy_map(pixels: &[f32], width: usize, height: usize, cell: usize) -> (Vec<f32>, usize, usize) {
    let gw = width / cell;
    let gh = height / cell;
    let mut out = vec![0f32; gw * gh];
    if gw == 0 || gh == 0 {
        return (out, gw, gh);
    }
    for y in 0..gh * cell {
        let y0 = y.saturating_sub(2);
        let y1 = (y + 2).min(height - 1);
        for x in 0..gw * cell {
            let x0 = x.saturating_sub(2);
            let x1 = (x + 2).min(width - 1);
            let mut s = 0f32;
            let mut n = 0f32;
            for yy in y0..=y1 {
                for xx in x0..=x1 {
                    s += pixels[yy * width + xx];
                    n += 1.0;
                }
            }
            let d = pixels[y * width + x] - s / n;
            out[(y / cell) * gw + x / cell] += d * d;
        }
    }
    // Remove the map's spatial mean: a frame-wide change of contrast drives every cell at
    // once and would otherwise spread each STA over the whole frame.
    let norm = 1.0 / (cell * cell) as f32;
    let mean = out.iter().sum::<f32>() * norm / out.len() as f32;
    out.iter_mut().for_each(|v| *v = *v * norm - mean);
    (out, gw, gh)
}

/// Spike-triggered averages of energy maps at several lags.
///
/// `maps[t]` is the energy map of frame t of one segment, `counts[t * n_channels + c]` the
/// count of channel c in bin t. Accumulates, for every lag, sum_t (count[t+lag] - mean) *
/// map[t] so that segments can be added one by one; [`StaAccumulator::finish`] divides.
#[derive(Debug, Clone)]
pub struct StaAccumulator {
    pub n_channels: usize,
    pub map_len: usize,
    pub max_lag: usize,
    /// [lag][channel][pixel]
    sums: Vec<f32>,
    /// Sum of maps, for the mean map.
    map_sum: Vec<f32>,
    /// Per lag, per channel: sum of counts and number of frames.
    count_sums: Vec<f64>,
    n: Vec<f64>,
}

impl StaAccumulator {
    pub fn new(n_channels: usize, map_len: usize, max_lag: usize) -> Self {
        Self {
            n_channels,
            map_len,
            max_lag,
            sums: vec![0.0; (max_lag + 1) * n_channels * map_len],
            map_sum: vec![0.0; map_len],
            count_sums: vec![0.0; (max_lag + 1) * n_channels],
            n: vec![0.0; max_lag + 1],
        }
    }

    /// Adds one segment. `first_frame` frames at the start are skipped (onset transient).
    pub fn add_segment(&mut self, maps: &[Vec<f32>], counts: &[f32], n_bins: usize, first_frame: usize) {
        let c_n = self.n_channels;
        for (t, map) in maps.iter().enumerate().skip(first_frame) {
            for (sum, v) in self.map_sum.iter_mut().zip(&map[..self.map_len]) {
                *sum += *v;
            }
            for lag in 0..=self.max_lag {
                let bin = t + lag;
                if bin >= n_bins {
                    continue;
                }
                self.n[lag] += 1.0;
                for c in 0..c_n {
                    let r = counts[bin * c_n + c];
                    self.count_sums[lag * c_n + c] += r as f64;
                    if r != 0.0 {
                        let row = &mut self.sums[(lag * c_n + c) * self.map_len..][..self.map_len];
                        for (acc, &m) in row.iter_mut().zip(map.iter()) {
                            *acc += r * m;
                        }
                    }
                }
            }
        }
    }

    /// Returns, per lag and channel, the STA minus the mean map scaled by the mean count,
    /// i.e. the covariance between count and energy at each grid cell ([lag][channel][pixel]).
    pub fn finish(&self) -> Vec<f32> {
        let c_n = self.n_channels;
        let total_maps: f64 = self.n.first().copied().unwrap_or(0.0).max(1.0);
        let mean_map: Vec<f32> = self.map_sum.iter().map(|s| (*s as f64 / total_maps) as f32).collect();
        let mut out = vec![0f32; self.sums.len()];
        for lag in 0..=self.max_lag {
            let n = self.n[lag].max(1.0);
            for c in 0..c_n {
                let mean_r = (self.count_sums[lag * c_n + c] / n) as f32;
                let base = (lag * c_n + c) * self.map_len;
                for k in 0..self.map_len {
                    out[base + k] = self.sums[base + k] / n as f32 - mean_r * mean_map[k];
                }
            }
        }
        out
    }
}

/// What the STA says about one channel.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChannelRf {
    /// Centre of mass of the positive STA at the population's best lag, in grid cells.
    pub center: [f32; 2],
    /// Peak STA value divided by the median absolute STA: a signal-to-noise ratio.
    pub snr: f32,
}

/// Latency and receptive fields estimated from STAs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RfEstimate {
    /// Lag (frames) at which the reliable channels' STA at their RF centres is largest.
    pub peak_lag: u32,
    /// The same, refined between bins by a parabola through the peak and its neighbours.
    pub peak_lag_interpolated: f32,
    /// Per lag, the summed STA of the reliable channels at their RF centres.
    pub lag_power: Vec<f32>,
    pub channels: Vec<ChannelRf>,
    /// Response latency (frames) from the onset transient, when the onset is visible.
    pub onset_latency: Option<u32>,
    /// Mean population count per bin after segment onset (training segments).
    pub onset_curve: Vec<f32>,
    /// Bounding box [x0, y0, x1, y1] (grid cells, inclusive) of the reliable channels' RF
    /// centres, or None when no channel is reliable.
    pub footprint: Option<[f32; 4]>,
}

impl RfEstimate {
    /// The response onset (frames) the response window is placed by: the onset latency
    /// when the onset transient shows it, else the bin before the STA peak.
    pub fn response_onset(&self) -> u32 {
        self.onset_latency.unwrap_or(self.peak_lag.saturating_sub(1))
    }
}

/// Channels whose STA peak exceeds this many median absolute values are "reliable".
/// On the simulated default dataset, channels with units score 10–30 and noise-only
/// channels 4–7.
pub const RELIABLE_SNR: f32 = 8.5;

/// Estimates the latency and per-channel RF centres from accumulated STAs.
///
/// RF centres come from the STA at the lag where the population's STA is strongest. The
/// latency then comes from the reliable channels only: for each lag, the sum over them of
/// their STA at their own RF centre (3x3 grid cells). Summing whole maps instead would let
/// the noise of every pixel and every noise-only channel flatten the curve.
pub fn estimate(sta: &[f32], n_channels: usize, grid_w: usize, grid_h: usize, max_lag: usize) -> RfEstimate {
    let map_len = grid_w * grid_h;
    let power: Vec<f32> = (0..=max_lag)
        .map(|lag| sta[lag * n_channels * map_len..(lag + 1) * n_channels * map_len].iter().map(|v| v * v).sum())
        .collect();
    let map_lag = power.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap_or(0);
    let mut channels = Vec::with_capacity(n_channels);
    for c in 0..n_channels {
        let map = &sta[(map_lag * n_channels + c) * map_len..][..map_len];
        let mut abs: Vec<f32> = map.iter().map(|v| v.abs()).collect();
        abs.sort_by(f32::total_cmp);
        let mad = abs.get(abs.len() / 2).copied().unwrap_or(0.0).max(1e-12);
        let peak = map.iter().copied().fold(f32::MIN, f32::max);
        // Centre of mass of the part of the map above half its peak.
        let (mut sx, mut sy, mut sw) = (0f32, 0f32, 0f32);
        for y in 0..grid_h {
            for x in 0..grid_w {
                let v = map[y * grid_w + x] - 0.5 * peak;
                if v > 0.0 {
                    sx += v * (x as f32 + 0.5);
                    sy += v * (y as f32 + 0.5);
                    sw += v;
                }
            }
        }
        let center = if sw > 0.0 { [sx / sw, sy / sw] } else { [grid_w as f32 / 2.0, grid_h as f32 / 2.0] };
        channels.push(ChannelRf { center, snr: peak / mad });
    }
    let reliable: Vec<usize> = (0..n_channels).filter(|&c| channels[c].snr >= RELIABLE_SNR).collect();
    let lag_power: Vec<f32> = (0..=max_lag)
        .map(|lag| {
            reliable
                .iter()
                .map(|&c| {
                    let map = &sta[(lag * n_channels + c) * map_len..][..map_len];
                    let (cx, cy) = (channels[c].center[0] as usize, channels[c].center[1] as usize);
                    let mut s = 0f32;
                    for y in cy.saturating_sub(1)..=(cy + 1).min(grid_h - 1) {
                        for x in cx.saturating_sub(1)..=(cx + 1).min(grid_w - 1) {
                            s += map[y * grid_w + x];
                        }
                    }
                    s
                })
                .sum()
        })
        .collect();
    let peak_lag = lag_power.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap_or(map_lag);
    let peak_lag_interpolated = if peak_lag > 0 && peak_lag < max_lag {
        let (a, b, c) = (lag_power[peak_lag - 1], lag_power[peak_lag], lag_power[peak_lag + 1]);
        let den = a - 2.0 * b + c;
        if den < 0.0 { peak_lag as f32 + 0.5 * (a - c) / den } else { peak_lag as f32 }
    } else {
        peak_lag as f32
    };
    let footprint = if reliable.is_empty() {
        None
    } else {
        let mut b = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
        for &c in &reliable {
            let ch = &channels[c];
            b[0] = b[0].min(ch.center[0]);
            b[1] = b[1].min(ch.center[1]);
            b[2] = b[2].max(ch.center[0]);
            b[3] = b[3].max(ch.center[1]);
        }
        Some(b)
    };
    RfEstimate { peak_lag: peak_lag as u32, peak_lag_interpolated, lag_power, channels, onset_latency: None, onset_curve: Vec::new(), footprint }
}

/// Latency from the mean population count per bin after a segment's onset: the first bin
/// whose count rises above the first bin's by a quarter of the curve's largest rise (the
/// kernel's first bin carries only part of its weight, so half the rise comes a bin late). None when the
/// curve never rises (no visible onset).
pub fn onset_latency(curve: &[f64]) -> Option<u32> {
    let base = *curve.first()?;
    let peak = curve.iter().copied().fold(f64::MIN, f64::max);
    // Not a rise: equal, lower, or NaN somewhere in the curve.
    if peak.partial_cmp(&base) != Some(std::cmp::Ordering::Greater) {
        return None;
    }
    curve.iter().position(|&v| v - base > 0.25 * (peak - base)).map(|b| b as u32)
}

#[cfg(test)]
mod tests {
    #[test]
    fn onset_latency_finds_the_first_bin_of_the_rise() {
        assert_eq!(super::onset_latency(&[10.0, 10.5, 11.0, 30.0, 40.0, 35.0]), Some(3));
        assert_eq!(super::onset_latency(&[67.0, 67.0, 81.0, 97.0, 96.0]), Some(2));
        assert_eq!(super::onset_latency(&[5.0, 5.0, 5.0]), None);
        assert_eq!(super::onset_latency(&[]), None);
    }

    use super::*;

    #[test]
    fn energy_map_is_zero_on_flat_images_and_positive_on_edges() {
        let flat = vec![0.5f32; 16 * 16];
        let (m, gw, gh) = energy_map(&flat, 16, 16, 4);
        assert_eq!((gw, gh), (4, 4));
        assert!(m.iter().all(|v| v.abs() < 1e-9));
        let mut edge = vec![0.0f32; 16 * 16];
        for y in 0..16 {
            for x in 8..16 {
                edge[y * 16 + x] = 1.0;
            }
        }
        let (m, _, _) = energy_map(&edge, 16, 16, 4);
        assert!(m.iter().sum::<f32>().abs() < 1e-5, "maps have zero spatial mean");
        assert!(m[1] > 0.0 && m[2] > 0.0, "cells next to the edge carry energy");
        assert!(m[0] < 0.0 && m[3] < 0.0, "cells far from the edge carry less than the mean");
    }

    #[test]
    fn sta_recovers_a_planted_location_and_lag() {
        // One channel that fires 2 frames after energy appears in grid cell (3, 1).
        let (gw, gh) = (6usize, 4usize);
        let n = 400;
        let mut maps = Vec::new();
        let mut state = 12345u64;
        let mut rnd = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 33) as f32) / (u32::MAX >> 1) as f32
        };
        for _ in 0..n {
            maps.push((0..gw * gh).map(|_| rnd()).collect::<Vec<f32>>());
        }
        let mut counts = vec![0f32; n];
        for t in 2..n {
            counts[t] = (maps[t - 2][gw + 3] * 10.0).round();
        }
        let mut acc = StaAccumulator::new(1, gw * gh, 4);
        acc.add_segment(&maps, &counts, n, 0);
        let est = estimate(&acc.finish(), 1, gw, gh, 4);
        assert_eq!(est.peak_lag, 2);
        let c = &est.channels[0];
        assert!((c.center[0] - 3.5).abs() < 0.5 && (c.center[1] - 1.5).abs() < 0.5, "{c:?}");
        assert!(c.snr > RELIABLE_SNR);
    }
}
