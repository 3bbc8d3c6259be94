//! `GET /api/projective-fields`: what each channel's activity adds to the reconstruction
//! (its projective field, see `models::projective`), with the channel's receptive-field
//! centre when the service has a dataset. Imagine mode shows them on hover.
//!
//! Computed on the first request (one batch through the reconstruction path) and kept.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use models::projective::{field_centre, field_to_unit, projective_fields, RfInCrop};
use models::{GrayCrop, V1Model};
use serde_json::{json, Value};
use shared_protocol::ErrorCode;

use crate::error::FrameError;
use crate::simulate::crop_png;
use crate::AppState;

/// The body of `GET /api/projective-fields`.
pub fn describe(model: &V1Model, receptive_fields: Option<&[RfInCrop]>) -> Result<Value, FrameError> {
    let pf = projective_fields(model)?;
    let s = pf.size;
    let channels: Vec<Value> = pf
        .fields
        .iter()
        .enumerate()
        .map(|(c, field)| {
            let image = crop_png(&GrayCrop { size: s, pixels: field_to_unit(field) })?;
            let rf = receptive_fields.and_then(|r| r.get(c));
            Ok(json!({
                "index": c,
                "electrode": model.info().channels[c].electrode,
                "pf_center": field_centre(field, s),
                "pf_peak": field.iter().fold(0f32, |m, v| m.max(v.abs())),
                "rf_center": rf.map(|r| r.centre),
                "rf_snr": rf.map(|r| r.snr),
                "image": image,
            }))
        })
        .collect::<Result<_, FrameError>>()?;
    Ok(json!({
        "image_size": s,
        "bump": "one standard deviation of the channel's training counts in every lag bin, over the mean response",
        "display": "0.5 is no change; 0 and 1 are the field's largest decrease and increase",
        "mean_image": crop_png(&GrayCrop { size: s, pixels: pf.mean_image.iter().map(|v| v.clamp(0.0, 1.0)).collect() })?,
        "channels": channels,
    }))
}

pub async fn handler(State(state): State<AppState>) -> Response {
    if let Some(body) = state.projective_fields.get() {
        return Json(body.clone()).into_response();
    }
    let worker = state.clone();
    // The receptive fields come with the dataset, which may arrive after start-up: an
    // answer made without them is not kept while they can still come.
    let settled = !state.sources.recorded_may_change();
    let computed = tokio::task::spawn_blocking(move || describe(worker.simulator.model(), worker.sources.receptive_fields().as_deref())).await;
    match computed {
        Ok(Ok(body)) if settled => Json(state.projective_fields.get_or_init(|| body).clone()).into_response(),
        Ok(Ok(body)) => Json(body).into_response(),
        Ok(Err(e)) => crate::http::error_response(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, &format!("projective fields: {e}")),
        Err(e) => crate::http::error_response(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, &format!("projective fields: {e}")),
    }
}
