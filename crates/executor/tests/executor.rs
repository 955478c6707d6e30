//! The executor's integration tests, against the real kube-apiserver of `scripts/kube-testenv`
//! (`eval "$(scripts/kube-testenv env)"` first; `scripts/test` does both). Each test makes its own
//! namespaces and executor accounts, so the tests run in parallel on one API server.

#[path = "executor/support.rs"]
mod support;

#[path = "executor/actions.rs"]
mod actions;

#[path = "executor/fences.rs"]
mod fences;

#[path = "executor/outcomes.rs"]
mod outcomes;

#[path = "executor/reads.rs"]
mod reads;
