//! What a request is, in Kubernetes terms (verb, resource, namespace, name), and the matcher tests use
//! to pick requests for fault injection and for counting in the request log.

use std::fmt;

use crate::patch::PatchType;

/// The Kubernetes verb of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// GET one object.
    Get,
    /// GET a collection.
    List,
    /// GET a collection with `watch=true`.
    Watch,
    /// POST.
    Create,
    /// PUT.
    Update,
    /// PATCH (any patch type, server-side apply included).
    Patch,
    /// DELETE one object.
    Delete,
    /// DELETE a collection.
    DeleteCollection,
}

impl Verb {
    /// Whether the verb can change stored state.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Self::Create | Self::Update | Self::Patch | Self::Delete | Self::DeleteCollection
        )
    }

    /// The lower-case spelling used in discovery and audit logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::List => "list",
            Self::Watch => "watch",
            Self::Create => "create",
            Self::Update => "update",
            Self::Patch => "patch",
            Self::Delete => "delete",
            Self::DeleteCollection => "deletecollection",
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Kubernetes meaning of one HTTP request (absent parts are `None`: discovery has no resource).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// The verb, for resource requests.
    pub verb: Option<Verb>,
    /// API group (`""` for core).
    pub group: Option<String>,
    /// API version.
    pub version: Option<String>,
    /// Plural resource name.
    pub resource: Option<String>,
    /// Subresource (`status`).
    pub subresource: Option<String>,
    /// Namespace from the path.
    pub namespace: Option<String>,
    /// Object name from the path.
    pub name: Option<String>,
    /// Patch type of a PATCH.
    pub patch_type: Option<PatchType>,
    /// `dryRun=All`: the server validates and answers but stores nothing.
    pub dry_run: bool,
}

impl RequestInfo {
    /// Whether the request can change stored state: a write verb, not a dry run.
    pub fn is_write(&self) -> bool {
        self.verb.is_some_and(Verb::is_write) && !self.dry_run
    }
}

/// Selects requests by any combination of verb, group, resource, subresource, namespace, name and patch
/// type. `RequestMatch::any()` matches every request; each builder call narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMatch {
    verbs: Vec<Verb>,
    group: Option<String>,
    resource: Option<String>,
    subresource: Option<Option<String>>,
    namespace: Option<String>,
    name: Option<String>,
    patch_type: Option<PatchType>,
    writes_only: bool,
    dry_run: Option<bool>,
}

impl RequestMatch {
    /// Matches every request.
    pub fn any() -> Self {
        Self::default()
    }

    /// Matches requests for this plural resource (`daemonsets`), any group.
    pub fn resource(resource: &str) -> Self {
        Self::any().on(resource)
    }

    /// Narrows to one plural resource name.
    pub fn on(mut self, resource: &str) -> Self {
        self.resource = Some(resource.to_string());
        self
    }

    /// Narrows to one verb (call again to allow several).
    pub fn verb(mut self, verb: Verb) -> Self {
        self.verbs.push(verb);
        self
    }

    /// Narrows to create, update, patch, delete and deletecollection.
    pub fn writes(mut self) -> Self {
        self.writes_only = true;
        self
    }

    /// Narrows to one API group (`""` = core).
    pub fn group(mut self, group: &str) -> Self {
        self.group = Some(group.to_string());
        self
    }

    /// Narrows to the `/status` subresource.
    pub fn status(mut self) -> Self {
        self.subresource = Some(Some("status".into()));
        self
    }

    /// Narrows to one subresource (`exec`, `scale`, …).
    pub fn subresource(mut self, subresource: &str) -> Self {
        self.subresource = Some(Some(subresource.to_string()));
        self
    }

    /// Narrows to the main resource (no subresource).
    pub fn main_resource(mut self) -> Self {
        self.subresource = Some(None);
        self
    }

    /// Narrows to one namespace.
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_string());
        self
    }

    /// Narrows to one object name.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// Narrows to server-side apply patches.
    pub fn apply(mut self) -> Self {
        self.patch_type = Some(PatchType::Apply);
        self.verbs.push(Verb::Patch);
        self
    }

    /// Narrows to dry runs (`true`) or to requests that store (`false`).
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = Some(dry_run);
        self
    }

    /// Narrows to one patch type.
    pub fn patch_type(mut self, patch_type: PatchType) -> Self {
        self.patch_type = Some(patch_type);
        self
    }

    /// Whether a request is selected.
    pub fn matches(&self, info: &RequestInfo) -> bool {
        let field = |want: &Option<String>, have: &Option<String>| {
            want.as_ref().is_none_or(|w| have.as_ref() == Some(w))
        };
        (self.verbs.is_empty() || info.verb.is_some_and(|v| self.verbs.contains(&v)))
            && (!self.writes_only || info.verb.is_some_and(Verb::is_write))
            && field(&self.group, &info.group)
            && field(&self.resource, &info.resource)
            && self
                .subresource
                .as_ref()
                .is_none_or(|want| *want == info.subresource)
            && field(&self.namespace, &info.namespace)
            && field(&self.name, &info.name)
            && self
                .patch_type
                .is_none_or(|want| info.patch_type == Some(want))
            && self.dry_run.is_none_or(|want| info.dry_run == want)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply_on_daemonset() -> RequestInfo {
        RequestInfo {
            verb: Some(Verb::Patch),
            group: Some("apps".into()),
            version: Some("v1".into()),
            resource: Some("daemonsets".into()),
            namespace: Some("gpu".into()),
            name: Some("agent".into()),
            patch_type: Some(PatchType::Apply),
            ..RequestInfo::default()
        }
    }

    #[test]
    fn matchers_narrow() {
        let info = apply_on_daemonset();
        assert!(RequestMatch::any().matches(&info));
        assert!(RequestMatch::resource("daemonsets").apply().matches(&info));
        assert!(
            RequestMatch::resource("daemonsets")
                .writes()
                .namespace("gpu")
                .name("agent")
                .main_resource()
                .matches(&info)
        );
        assert!(!RequestMatch::resource("daemonsets").status().matches(&info));
        assert!(!RequestMatch::resource("pods").matches(&info));
        assert!(
            !RequestMatch::any()
                .verb(Verb::Get)
                .verb(Verb::List)
                .matches(&info)
        );
        assert!(
            RequestMatch::any()
                .verb(Verb::Get)
                .verb(Verb::Patch)
                .group("apps")
                .matches(&info)
        );
        assert!(
            !RequestMatch::any()
                .patch_type(PatchType::Merge)
                .matches(&info)
        );
        let dry = RequestInfo {
            dry_run: true,
            ..apply_on_daemonset()
        };
        assert!(RequestMatch::any().dry_run(true).matches(&dry));
        assert!(!RequestMatch::any().dry_run(false).matches(&dry));
        assert!(
            RequestMatch::any().writes().matches(&dry),
            "a dry run is still a write verb"
        );
        assert!(!dry.is_write() && info.is_write());
        let discovery = RequestInfo::default();
        assert!(!RequestMatch::any().writes().matches(&discovery));
        assert!(RequestMatch::any().matches(&discovery));
    }
}
