//! What a resource's schema says about its fields: list semantics (map keyed by fields, set, atomic)
//! for server-side apply and strategic merge patch, and, for CRDs, structural pruning, defaulting and
//! validation, so a field the CRD does not declare vanishes and a wrong value is refused here just as
//! on a real cluster.

mod lists;
mod prune;
mod validate;

pub use lists::{ListKind, ListTypes, element_key};
pub use prune::{Pruned, prune_and_default};
pub use validate::{Violation, validate, validate_update};
