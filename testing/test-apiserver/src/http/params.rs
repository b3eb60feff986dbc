//! Query parameters of a request.

use std::collections::HashMap;

use crate::error::ApiError;

/// Decoded query parameters (last value wins).
#[derive(Debug, Clone, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses a URL query string.
    pub fn parse(query: &str) -> Self {
        Self(
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// A parameter's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A boolean parameter (`true` or `1`).
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("true" | "1"))
    }

    /// A numeric parameter; a bad number is a 400.
    pub fn number(&self, name: &str) -> Result<Option<u64>, ApiError> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "{name}: invalid value \"{v}\": must be a non-negative integer"
                    ))
                })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        let params =
            Params::parse("labelSelector=app%3Dagent%2Ctier%20in%20(a)&watch=1&limit=5&bad=x");
        assert_eq!(params.get("labelSelector"), Some("app=agent,tier in (a)"));
        assert!(params.flag("watch"));
        assert_eq!(params.number("limit").unwrap(), Some(5));
        assert_eq!(params.number("bad").unwrap_err().code, 400);
        assert_eq!(params.number("missing").unwrap(), None);
    }
}
