//! Durations written as the operator's flags take them (`500ms`, `10s`, `1m`, `24h`, or bare seconds).

use std::time::Duration;

/// Parses `500ms`, `30s`, `10m`, `1h`, `1h30m` or a bare number of seconds (the operator's flag
/// syntax, through the one parser in `gpu_fixture`) and refuses zero, which no flag here means.
pub use gpu_fixture::parse_positive_duration as parse_duration;

/// The duration in whole seconds, for tool arguments counted in seconds; `flag` names the option in
/// the error.
pub fn whole_seconds(flag: &str, duration: Duration) -> Result<u64, String> {
    if duration.subsec_nanos() != 0 {
        return Err(format!(
            "{flag} takes whole seconds (the tool counts in seconds), got {duration:?}: use for \
             example 1s or 10s"
        ));
    }
    Ok(duration.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_the_usual_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("60"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5_400)));
        assert!(parse_duration("0s").unwrap_err().contains("positive"));
        assert!(
            parse_duration("5d")
                .unwrap_err()
                .contains("unknown duration unit")
        );
        assert!(
            parse_duration("soon")
                .unwrap_err()
                .contains("not a duration")
        );
    }

    #[test]
    fn whole_seconds_refuses_fractions() {
        assert_eq!(whole_seconds("--window", Duration::from_secs(10)), Ok(10));
        let err = whole_seconds("--window", Duration::from_millis(500)).unwrap_err();
        assert!(err.contains("--window takes whole seconds"), "{err}");
    }
}
