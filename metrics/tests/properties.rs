//! Properties every correct implementation must have, checked on many seeded random
//! inputs: identity and inversion for image metrics, perfect and uninformative
//! reconstructions for identification, invariances and the noise-free bound for the
//! response metrics.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use v1_metrics::{
    ccnorm, electrode_metrics, evaluate_reconstructions, mse, pearson_r, pixcorr, psnr, ssim,
    two_way_identification_pixcorr, GrayImageF32, TrialMatrix,
};

const CASES: u64 = 40;

fn random_image(rng: &mut ChaCha8Rng, w: u32, h: u32) -> GrayImageF32 {
    let pixels = (0..w * h).map(|_| rng.random::<f32>()).collect();
    GrayImageF32::new(w, h, pixels).unwrap()
}

/// A smooth random image (sum of a few random gratings), closer to natural images than
/// white noise, so SSIM's local statistics are exercised.
fn smooth_image(rng: &mut ChaCha8Rng, w: u32, h: u32) -> GrayImageF32 {
    let comps: Vec<(f32, f32, f32, f32)> = (0..4)
        .map(|_| {
            (
                rng.random_range(-0.4..0.4),
                rng.random_range(-0.4..0.4),
                rng.random_range(0.0..6.3),
                rng.random_range(0.05..0.2),
            )
        })
        .collect();
    let mut pixels = Vec::with_capacity((w * h) as usize);
    for y in 0..h {
        for x in 0..w {
            let v: f32 = comps
                .iter()
                .map(|(fx, fy, ph, a)| a * (fx * x as f32 + fy * y as f32 + ph).sin())
                .sum();
            pixels.push((0.5 + v).clamp(0.0, 1.0));
        }
    }
    GrayImageF32::new(w, h, pixels).unwrap()
}

fn map(img: &GrayImageF32, f: impl Fn(f32) -> f32) -> GrayImageF32 {
    GrayImageF32::new(
        img.width(),
        img.height(),
        img.pixels().iter().map(|&v| f(v)).collect(),
    )
    .unwrap()
}

#[test]
fn identical_images_are_perfect() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for case in 0..CASES {
        let (w, h) = (rng.random_range(11..40), rng.random_range(11..40));
        let img = if case % 2 == 0 {
            random_image(&mut rng, w, h)
        } else {
            smooth_image(&mut rng, w, h)
        };
        assert!(
            (ssim(&img, &img).unwrap() - 1.0).abs() < 1e-12,
            "case {case}"
        );
        assert!(
            (pixcorr(&img, &img).unwrap() - 1.0).abs() < 1e-12,
            "case {case}"
        );
        assert_eq!(mse(&img, &img).unwrap(), 0.0);
        assert_eq!(psnr(&img, &img).unwrap(), None);
    }
}

#[test]
fn inverted_images_anticorrelate() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for case in 0..CASES {
        let img = smooth_image(&mut rng, 32, 24);
        let inv = map(&img, |v| 1.0 - v);
        assert!(
            (pixcorr(&img, &inv).unwrap() + 1.0).abs() < 1e-9,
            "case {case}"
        );
        assert!(ssim(&img, &inv).unwrap() < 0.0, "case {case}");
    }
}

#[test]
fn image_metrics_are_bounded_symmetric_and_consistent() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for case in 0..CASES {
        let a = smooth_image(&mut rng, 24, 20);
        let b = random_image(&mut rng, 24, 20);
        let s = ssim(&a, &b).unwrap();
        assert!((-1.0..=1.0).contains(&s), "case {case}: ssim {s}");
        assert!(
            (s - ssim(&b, &a).unwrap()).abs() < 1e-12,
            "SSIM is symmetric"
        );
        let r = pixcorr(&a, &b).unwrap();
        assert!((-1.0..=1.0).contains(&r));
        // Pixel correlation ignores brightness and contrast.
        let affine = map(&b, |v| 0.3 * v + 0.2);
        assert!((pixcorr(&a, &affine).unwrap() - r).abs() < 1e-6);
        let m = mse(&a, &b).unwrap();
        let p = psnr(&a, &b).unwrap().expect("different images have a PSNR");
        assert!((p - 10.0 * (1.0 / m).log10()).abs() < 1e-12);
        // A closer reconstruction has higher SSIM and lower MSE than a farther one.
        let near = map(&a, |v| 0.9 * v + 0.05);
        assert!(ssim(&a, &near).unwrap() > s);
        assert!(mse(&a, &near).unwrap() < m);
    }
}

#[test]
fn perfect_reconstructions_are_identified_and_blank_ones_are_chance() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for case in 0..10 {
        let n = rng.random_range(2..12);
        let targets: Vec<GrayImageF32> = (0..n).map(|_| smooth_image(&mut rng, 16, 16)).collect();
        let perfect = two_way_identification_pixcorr(&targets, &targets).unwrap();
        assert_eq!(perfect.mean, 1.0, "case {case}");
        assert!(perfect.per_reconstruction.iter().all(|&v| v == 1.0));

        // A constant image correlates 0 with every target: all ties, exactly chance.
        let blank = vec![GrayImageF32::new(16, 16, vec![0.5; 256]).unwrap(); n];
        assert_eq!(
            two_way_identification_pixcorr(&targets, &blank)
                .unwrap()
                .mean,
            0.5
        );

        let batch = evaluate_reconstructions(&targets, &targets).unwrap();
        assert_eq!(batch.identification.map(|i| i.mean), Some(1.0));
        assert!((batch.mean_ssim - 1.0).abs() < 1e-12);
        assert_eq!(batch.mean_psnr_db, None);
        assert_eq!(batch.psnr_defined, 0);
    }
}

/// Gaussian trials around known rates: the noise-free rates are the best possible
/// prediction, so CCnorm and FEVE must come out near 1 and r near 1 against the truth.
#[test]
fn noise_free_prediction_reaches_the_bound() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for case in 0..10 {
        let (n_stim, n_rep) = (200, 20);
        let rates: Vec<f64> = (0..n_stim).map(|_| rng.random_range(0.0..10.0)).collect();
        let noise_sd = 3.0;
        let normal = Normal::new(0.0, noise_sd).unwrap();
        let rows: Vec<Vec<f64>> = rates
            .iter()
            .map(|&r| (0..n_rep).map(|_| r + normal.sample(&mut rng)).collect())
            .collect();
        let trials = TrialMatrix::from_rows(&rows).unwrap();
        let m = electrode_metrics(&trials, &rates).unwrap();
        assert!(
            (m.noise_variance - noise_sd * noise_sd).abs() < 0.8,
            "case {case}: {m:?}"
        );
        let expected_fev = (100.0 / 12.0) / (100.0 / 12.0 + noise_sd * noise_sd);
        assert!((m.fev - expected_fev).abs() < 0.08, "case {case}: {m:?}");
        assert!((m.feve - 1.0).abs() < 0.1, "case {case}: {m:?}");
        let cc = m.ccnorm.expect("positive signal power");
        assert!((cc - 1.0).abs() < 0.05, "case {case}: ccnorm {cc}");
        // The raw correlation to the trial average is pulled below 1 by noise; CCnorm
        // corrects for exactly that.
        assert!(m.correlation_to_average < cc);

        // CCnorm and correlation are unchanged by an affine rescaling of the prediction.
        let scaled: Vec<f64> = rates.iter().map(|r| 2.5 * r - 1.0).collect();
        let cc2 = ccnorm(&trials, &scaled)
            .unwrap()
            .expect("positive signal power");
        assert!((cc2 - cc).abs() < 1e-9);
        let r1 = pearson_r(&rates, &trials.trial_means()).unwrap();
        let r2 = pearson_r(&scaled, &trials.trial_means()).unwrap();
        assert!((r1 - r2).abs() < 1e-12);
    }
}
