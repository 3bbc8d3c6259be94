//! What a simulation-service says about its sources outside the WebSocket messages: the
//! `recorded` field of `GET /api/info` and `GET /healthz`, which tells the page whether
//! Recorded mode can play, is still being prepared, or cannot be had.

use serde::{Deserialize, Serialize};

/// Whether Recorded mode (and the dataset's random frames) can be served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase", deny_unknown_fields)]
pub enum RecordedStatus {
    /// The held-out test segments are loaded.
    Ready {
        segments: usize,
    },
    /// The dataset or its cache is being made beside the running service; it is picked
    /// up on its own when ready.
    Preparing {
        /// Of the step now running, 0–100.
        percent: u8,
        /// The step now running, in words (e.g. "simulating the dataset").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        phase: Option<String>,
    },
    /// Neither loaded nor being prepared; `reason` says why and what to do.
    Unavailable {
        reason: String,
    },
}

impl RecordedStatus {
    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Ready { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_state_has_its_wire_form() {
        let cases = [
            (RecordedStatus::Ready { segments: 3 }, r#"{"state":"ready","segments":3}"#),
            (
                RecordedStatus::Preparing { percent: 42, phase: Some("simulating the dataset".into()) },
                r#"{"state":"preparing","percent":42,"phase":"simulating the dataset"}"#,
            ),
            (RecordedStatus::Preparing { percent: 0, phase: None }, r#"{"state":"preparing","percent":0}"#),
            (RecordedStatus::Unavailable { reason: "no --data".into() }, r#"{"state":"unavailable","reason":"no --data"}"#),
        ];
        for (status, json) in cases {
            assert_eq!(serde_json::to_string(&status).unwrap(), json);
            assert_eq!(serde_json::from_str::<RecordedStatus>(json).unwrap(), status);
        }
    }

    #[test]
    fn an_unknown_state_is_refused() {
        let e = serde_json::from_str::<RecordedStatus>(r#"{"state":"later"}"#).unwrap_err().to_string();
        assert!(e.contains("later"), "{e}");
    }
}
