//! Projective fields: what each good channel's activity paints into the reconstruction,
//! against its receptive field, for the model and for the ridge decoder.

use std::path::Path;

use neural_data::cache::Dataset;

use crate::error::Result;
use crate::pipeline::V1Model;
use crate::projective::PfRfComparison;
use crate::ridge::Ridge;

/// The projective-field comparisons of the model and of the ridge decoder.
pub type ModelAndRidge = (Option<PfRfComparison>, Option<PfRfComparison>);

/// Training samples the receptive-field maps of the projective-field figure average over.
pub(super) const RF_MAP_SAMPLES: usize = 20_000;

/// Each good channel's projective field against its receptive-field estimate (dataset
/// cache), for the model (with the figures) and for the ridge decoder; None when the
/// cache's RF estimates do not cover the model's channels.
pub fn projective_section(ds: &Dataset, model: &V1Model, ridge: &Ridge, good: &[bool], out: &Path) -> Result<ModelAndRidge> {
    use crate::projective;
    let info = model.info();
    let rfs = projective::rf_centres_in_crop(&ds.meta);
    if rfs.len() != info.n_channels() {
        return Ok((None, None));
    }
    let pf = projective::projective_fields(model)?;
    let cmp = projective::compare(info, &pf, &rfs, Some(good))?;
    let compared: Vec<usize> = projective::figure_channels(cmp.channels.len()).into_iter().map(|k| cmp.channels[k].channel).collect();
    let rf_maps = projective::energy_sta(ds, &compared, RF_MAP_SAMPLES);
    projective::write_figures(&pf, &cmp, &rf_maps, out)?;
    let ridge_pf = projective::projective_fields_of(info, |rows, _| ridge.predict(&rows))?;
    let ridge_cmp = projective::compare(info, &ridge_pf, &rfs, Some(good))?;
    Ok((Some(cmp), Some(ridge_cmp)))
}
