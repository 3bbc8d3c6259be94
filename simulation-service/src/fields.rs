//! `GET /api/projective-fields`: what each channel's activity adds to the reconstruction
//! (its projective field, see `models::projective`), with the channel's receptive-field
//! centre when the service has a dataset. Imagine mode shows them on hover.
//! `?population=wide` asks for the wide-field population's, whose receptive-field
//! centres come from its model (`rf_centre` of each channel, where known).
//!
//! Computed on the first request (one batch through the reconstruction path) and kept.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use models::projective::{field_centre, field_to_unit, projective_fields, RfInCrop};
use models::{GrayCrop, V1Model};
use serde_json::{json, Value};
use shared_protocol::{ErrorCode, Population};

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

/// The population a query names (`population=pvc1` or `population=wide`; absent: pvc1).
fn population_of(query: Option<&str>) -> Result<Population, String> {
    let mut population = Population::Pvc1;
    for pair in query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != "population" {
            return Err(format!("GET /api/projective-fields takes only ?population=; got {key:.40?}"));
        }
        population = Population::ALL
            .into_iter()
            .find(|p| p.as_str() == value)
            .ok_or_else(|| format!("population {value:.40?} is not one of the valid values: \"pvc1\" (the default) or \"wide\""))?;
    }
    Ok(population)
}

pub async fn handler(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    match population_of(query.as_deref()) {
        Ok(Population::Pvc1) => pvc1(state).await,
        Ok(Population::Wide) => wide(state).await,
        Err(message) => crate::http::error_response(StatusCode::BAD_REQUEST, ErrorCode::BadMessage, &message),
    }
}

/// The wide-field population's fields, with each channel's `rf_centre` from its model.
async fn wide(state: AppState) -> Response {
    if state.wide.is_none() {
        return crate::http::error_response(StatusCode::NOT_FOUND, ErrorCode::Unavailable, crate::NO_WIDE_MODEL);
    }
    if let Some(body) = state.wide_projective_fields.get() {
        return Json(body.clone()).into_response();
    }
    let worker = state.clone();
    let computed = tokio::task::spawn_blocking(move || {
        let Some(model) = worker.wide.as_ref().map(|w| w.model()) else {
            return Err(FrameError::Unavailable(crate::NO_WIDE_MODEL.to_owned()));
        };
        let mut body = describe(model, None)?;
        // The model's own centres; null where the channel has none.
        if let Some(channels) = body["channels"].as_array_mut() {
            for (channel, info) in channels.iter_mut().zip(&model.info().channels) {
                channel["rf_center"] = json!(info.rf_centre);
            }
        }
        Ok(body)
    })
    .await;
    match computed {
        Ok(Ok(body)) => Json(state.wide_projective_fields.get_or_init(|| body).clone()).into_response(),
        Ok(Err(e)) => crate::http::error_response(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, &format!("projective fields: {e}")),
        Err(e) => crate::http::error_response(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, &format!("projective fields: {e}")),
    }
}

async fn pvc1(state: AppState) -> Response {
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
