//! The policy step's integration tests: the shipped default policy's outcomes, custom policy files,
//! malformed and undefined results, load and evaluation errors, the input hash (recomputed with raw
//! `sha2` and the canonicalizer), concurrency, and the OPA client against an OPA-compatible REST
//! server built on the embedded engine (`policy/fake_opa.rs`), and the policy templates (`policy/templates.rs`).

#[path = "policy/common.rs"]
mod common;

#[path = "policy/fake_opa.rs"]
mod fake_opa;

#[path = "policy/default_policy.rs"]
mod default_policy;

#[path = "policy/custom.rs"]
mod custom;

#[path = "policy/hashing.rs"]
mod hashing;

#[path = "policy/opa.rs"]
mod opa;

#[path = "policy/templates.rs"]
mod templates;
