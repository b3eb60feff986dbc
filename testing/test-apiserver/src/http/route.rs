//! URL paths → what they address (discovery document, OpenAPI, or a resource collection/object).

use percent_encoding::percent_decode_str;

/// Where a resource path points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    /// API group (`""` for core).
    pub group: String,
    /// API version.
    pub version: String,
    /// Namespace segment, if any.
    pub namespace: Option<String>,
    /// Plural resource.
    pub resource: String,
    /// Object name, if any.
    pub name: Option<String>,
    /// Subresource, if any.
    pub subresource: Option<String>,
}

/// What a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/version`.
    Version,
    /// `/healthz`, `/readyz`, `/livez`.
    Health,
    /// `/api`.
    CoreVersions,
    /// `/apis`.
    Groups,
    /// `/apis/<group>`.
    Group(String),
    /// `/api/v1` or `/apis/<group>/<version>`.
    GroupVersion(String, String),
    /// `/openapi/v2` (and `/swagger.json`).
    OpenApiV2,
    /// `/openapi/v3`.
    OpenApiV3Index,
    /// `/openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>`.
    OpenApiV3(String, String),
    /// A collection or an object.
    Resource(ResourcePath),
}

/// Parses a URL path; `None` for paths the server does not know.
pub fn parse(path: &str) -> Option<Route> {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    match s.as_slice() {
        ["version"] => Some(Route::Version),
        ["healthz" | "readyz" | "livez", ..] => Some(Route::Health),
        ["api"] => Some(Route::CoreVersions),
        ["apis"] => Some(Route::Groups),
        ["apis", group] => Some(Route::Group(group.to_string())),
        ["api", version] => Some(Route::GroupVersion(String::new(), version.to_string())),
        ["apis", group, version] => {
            Some(Route::GroupVersion(group.to_string(), version.to_string()))
        }
        ["openapi", "v2"] | ["swagger.json"] => Some(Route::OpenApiV2),
        ["openapi", "v3"] => Some(Route::OpenApiV3Index),
        ["openapi", "v3", "api", version] => {
            Some(Route::OpenApiV3(String::new(), version.to_string()))
        }
        ["openapi", "v3", "apis", group, version] => {
            Some(Route::OpenApiV3(group.to_string(), version.to_string()))
        }
        ["api", version, rest @ ..] => resource("", version, rest),
        ["apis", group, version, rest @ ..] => resource(group, version, rest),
        _ => None,
    }
}

fn resource(group: &str, version: &str, rest: &[&str]) -> Option<Route> {
    let path =
        |namespace: Option<&str>, resource: &str, name: Option<&str>, subresource: Option<&str>| {
            Some(Route::Resource(ResourcePath {
                group: group.to_string(),
                version: version.to_string(),
                namespace: namespace.map(String::from),
                resource: resource.to_string(),
                name: name.map(String::from),
                subresource: subresource.map(String::from),
            }))
        };
    match rest {
        // The namespace object itself and its subresources.
        ["namespaces", name] if group.is_empty() => path(None, "namespaces", Some(name), None),
        ["namespaces", name, sub @ ("status" | "finalize")] if group.is_empty() => {
            path(None, "namespaces", Some(name), Some(sub))
        }
        ["namespaces", namespace, resource] => path(Some(namespace), resource, None, None),
        ["namespaces", namespace, resource, name] => {
            path(Some(namespace), resource, Some(name), None)
        }
        ["namespaces", namespace, resource, name, sub] => {
            path(Some(namespace), resource, Some(name), Some(sub))
        }
        [resource] => path(None, resource, None, None),
        [resource, name] => path(None, resource, Some(name), None),
        [resource, name, sub] => path(None, resource, Some(name), Some(sub)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(
        group: &str,
        ns: Option<&str>,
        resource: &str,
        name: Option<&str>,
        sub: Option<&str>,
    ) -> Option<Route> {
        Some(Route::Resource(ResourcePath {
            group: group.into(),
            version: "v1".into(),
            namespace: ns.map(String::from),
            resource: resource.into(),
            name: name.map(String::from),
            subresource: sub.map(String::from),
        }))
    }

    #[test]
    fn paths() {
        assert_eq!(parse("/version"), Some(Route::Version));
        assert_eq!(parse("/api"), Some(Route::CoreVersions));
        assert_eq!(
            parse("/api/v1"),
            Some(Route::GroupVersion(String::new(), "v1".into()))
        );
        assert_eq!(parse("/apis/apps"), Some(Route::Group("apps".into())));
        assert_eq!(
            parse("/openapi/v3/apis/apps/v1"),
            Some(Route::OpenApiV3("apps".into(), "v1".into()))
        );
        assert_eq!(parse("/api/v1/pods"), res("", None, "pods", None, None));
        assert_eq!(
            parse("/api/v1/namespaces"),
            res("", None, "namespaces", None, None)
        );
        assert_eq!(
            parse("/api/v1/namespaces/gpu"),
            res("", None, "namespaces", Some("gpu"), None)
        );
        assert_eq!(
            parse("/api/v1/namespaces/gpu/status"),
            res("", None, "namespaces", Some("gpu"), Some("status"))
        );
        assert_eq!(
            parse("/api/v1/namespaces/gpu/pods"),
            res("", Some("gpu"), "pods", None, None)
        );
        assert_eq!(
            parse("/api/v1/namespaces/gpu/pods/p/status"),
            res("", Some("gpu"), "pods", Some("p"), Some("status"))
        );
        assert_eq!(
            parse("/apis/node.k8s.io/v1/runtimeclasses/nvidia"),
            res("node.k8s.io", None, "runtimeclasses", Some("nvidia"), None)
        );
        assert_eq!(
            parse("/apis/x.io/v1/things/a%3Ab"),
            res("x.io", None, "things", Some("a:b"), None)
        );
        assert_eq!(parse("/nope"), None);
    }
}
