//! CEL rules (`x-kubernetes-validations`) the API server enforces on `GpuDiagnosticsConfig`, kept
//! as named constants so the derive attributes, the docs and the tests share one text.
//!
//! Every rule guards its field accesses with `has()`: defaults fill most fields on the server, but
//! the rules must also hold for objects read back from older schemas.

/// A CEL rule and the message the API server returns when it fails.
pub type CelRule = (&'static str, &'static str);

/// Object names are `k8s-mcp-agent-<config>`; label values and most names stop at 63 characters.
pub(crate) const NAME_LENGTH: CelRule = (
    "self.metadata.name.size() <= 49",
    "metadata.name must be at most 49 characters: the operator names the agent's objects \
     k8s-mcp-agent-<name>, which must fit in 63",
);

pub(crate) const AT_MOST_ONE_ENABLED: CelRule = (
    "(has(self.runtimeClass) && has(self.runtimeClass.enabled) && self.runtimeClass.enabled ? 1 : 0) \
     + (has(self.resourceRequest) && has(self.resourceRequest.enabled) && self.resourceRequest.enabled ? 1 : 0) \
     + (has(self.resourceClaim) && has(self.resourceClaim.enabled) && self.resourceClaim.enabled ? 1 : 0) <= 1",
    "at most one of gpu.runtimeClass.enabled, gpu.resourceRequest.enabled and \
     gpu.resourceClaim.enabled may be true: each one picks a different GPU access mode",
);

pub(crate) const RUNTIME_CLASS_ENABLED_AGREES: CelRule = (
    "!(has(self.runtimeClass) && has(self.runtimeClass.enabled) && self.runtimeClass.enabled) \
     || !has(self.mode) || self.mode == 'Auto' || self.mode == 'RuntimeClass'",
    "gpu.runtimeClass.enabled=true picks the RuntimeClass mode but gpu.mode names another mode: \
     remove one of the two",
);

pub(crate) const RESOURCE_REQUEST_ENABLED_AGREES: CelRule = (
    "!(has(self.resourceRequest) && has(self.resourceRequest.enabled) && self.resourceRequest.enabled) \
     || !has(self.mode) || self.mode == 'Auto' || self.mode == 'DevicePlugin'",
    "gpu.resourceRequest.enabled=true picks the DevicePlugin mode but gpu.mode names another mode: \
     remove one of the two",
);

pub(crate) const RESOURCE_CLAIM_ENABLED_AGREES: CelRule = (
    "!(has(self.resourceClaim) && has(self.resourceClaim.enabled) && self.resourceClaim.enabled) \
     || !has(self.mode) || self.mode == 'Auto' || self.mode == 'DRA'",
    "gpu.resourceClaim.enabled=true picks the DRA mode but gpu.mode names another mode: \
     remove one of the two",
);

pub(crate) const RUNTIME_CLASS_MODE_NOT_DISABLED: CelRule = (
    "!has(self.mode) || self.mode != 'RuntimeClass' \
     || !(has(self.runtimeClass) && has(self.runtimeClass.enabled) && !self.runtimeClass.enabled)",
    "gpu.mode is RuntimeClass but gpu.runtimeClass.enabled is false: remove one of the two",
);

pub(crate) const DEVICE_PLUGIN_MODE_NOT_DISABLED: CelRule = (
    "!has(self.mode) || self.mode != 'DevicePlugin' \
     || !(has(self.resourceRequest) && has(self.resourceRequest.enabled) && !self.resourceRequest.enabled)",
    "gpu.mode is DevicePlugin but gpu.resourceRequest.enabled is false: remove one of the two",
);

pub(crate) const DRA_MODE_NOT_DISABLED: CelRule = (
    "!has(self.mode) || self.mode != 'DRA' \
     || !(has(self.resourceClaim) && has(self.resourceClaim.enabled) && !self.resourceClaim.enabled)",
    "gpu.mode is DRA but gpu.resourceClaim.enabled is false: remove one of the two",
);

pub(crate) const TEMPLATE_OR_INLINE_SPEC: CelRule = (
    "!(has(self.templateName) && self.templateName != '' && has(self.spec) && size(self.spec) > 0)",
    "gpu.resourceClaim.templateName and gpu.resourceClaim.spec are mutually exclusive: reference \
     an existing ResourceClaimTemplate or describe one inline, not both",
);

pub(crate) const NAMESPACE_IMMUTABLE: CelRule = (
    "self == oldSelf",
    "namespace.name is immutable: delete and re-create the GpuDiagnosticsConfig to move the agent \
     to another namespace",
);

pub(crate) const NAMESPACE_NOT_SHARED_SYSTEM: CelRule = (
    "!has(self.create) || !self.create || !has(self.name) \
     || !(self.name in ['default', 'kube-system', 'kube-public', 'kube-node-lease'])",
    "namespace.create=true would label a shared system namespace: pick a dedicated namespace, or \
     set namespace.create=false to deploy into an existing one untouched",
);

/// Every rule with the schema location it is attached to (a JSON path under the object root), for
/// documentation and for tests that check the generated CRD carries each one.
pub const CEL_RULES: &[(&str, CelRule)] = &[
    ("", NAME_LENGTH),
    (".spec.gpu", AT_MOST_ONE_ENABLED),
    (".spec.gpu", RUNTIME_CLASS_ENABLED_AGREES),
    (".spec.gpu", RESOURCE_REQUEST_ENABLED_AGREES),
    (".spec.gpu", RESOURCE_CLAIM_ENABLED_AGREES),
    (".spec.gpu", RUNTIME_CLASS_MODE_NOT_DISABLED),
    (".spec.gpu", DEVICE_PLUGIN_MODE_NOT_DISABLED),
    (".spec.gpu", DRA_MODE_NOT_DISABLED),
    (".spec.gpu.resourceClaim", TEMPLATE_OR_INLINE_SPEC),
    (".spec.namespace", NAMESPACE_NOT_SHARED_SYSTEM),
    (".spec.namespace.name", NAMESPACE_IMMUTABLE),
];
