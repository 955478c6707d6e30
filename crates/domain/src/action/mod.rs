//! The action model (SPEC §3): action types, resource kinds, and the validated `Action` an executor runs.
//!
//! Everything here is pure: a request is parsed and checked completely (names, parameters, kind/type pairs)
//! before anything talks to Kubernetes, and every refusal says what was wrong in words a caller can act on.

mod kinds;
mod names;
mod request;

pub use kinds::{Access, ActionType, PodSpecPath, ResourceKind};
pub use names::validate_namespace;
pub use request::{Action, ActionRequest, InvalidAction, MAX_LIST_LIMIT, MAX_REPLICAS, Operation, Propagation};

#[cfg(test)]
mod tests;
