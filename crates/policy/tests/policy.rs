//! The policy step's integration tests: the shipped default policy's outcomes, custom policy files,
//! malformed and undefined results, load and evaluation errors, the input hash (recomputed with raw
//! `sha2` and the canonicalizer), concurrency, the OPA client against a real OPA (OPA's own Go engine behind
//! a small OPA REST server, `policy/real_opa.rs`), the policy templates (`policy/templates.rs`), and the same
//! decisions from the embedded engine and OPA on a generated corpus (`policy/differential.rs`).

#[path = "policy/common.rs"]
mod common;

#[path = "policy/real_opa.rs"]
mod real_opa;

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

#[path = "policy/corpus.rs"]
mod corpus;

#[path = "policy/differential.rs"]
mod differential;
