//! Checks both services make on their settings before anything starts.

/// A numeric setting outside the range in which it can work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} is {got}; it must be between {min} and {max}")]
pub struct OutOfRange {
    /// The setting as the user knows it (e.g. "workers", "max image bytes").
    pub name: &'static str,
    pub got: u64,
    pub min: u64,
    pub max: u64,
}

/// Ok when `min <= got <= max`; otherwise the error names the setting and the range.
pub fn range(name: &'static str, got: u64, min: u64, max: u64) -> Result<(), OutOfRange> {
    if (min..=max).contains(&got) {
        Ok(())
    } else {
        Err(OutOfRange { name, got, min, max })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_inclusive() {
        assert_eq!(range("workers", 1, 1, 256), Ok(()));
        assert_eq!(range("workers", 256, 1, 256), Ok(()));
    }

    #[test]
    fn the_error_names_the_setting_and_its_range() {
        let err = range("workers", 0, 1, 256).unwrap_err();
        assert_eq!(err, OutOfRange { name: "workers", got: 0, min: 1, max: 256 });
        assert_eq!(err.to_string(), "workers is 0; it must be between 1 and 256");
    }
}
