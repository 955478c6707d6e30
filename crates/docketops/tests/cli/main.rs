//! The `docketops` binary end to end: real processes, a real SQLite file or PostgreSQL database, the
//! real HTTP server. PostgreSQL is the server at DOCKETOPS_TEST_POSTGRES_URL (default
//! postgres://postgres@127.0.0.1:5432/postgres); each test makes a database of its own.
//!
//! One test binary (`--test cli`): the harness is in `support` (with the `on_both!` macro, hence
//! `#[macro_use]` before every other module), the tests are in one module per topic.

#[macro_use]
mod support;

// The harness under the names the topic modules import (`use super::{Server, TestApp, ...}`).
use support::kube::{KubeTestEnv, KubeWorld, kube_test_env, kube_test_env_b};
use support::{BIN, Server, TestApp, create_identities, entry_kinds, self_signed_certificate, stdout, verify_json};

mod actions;
mod approvals;
mod breakers;
mod group_approvals;
mod identities;
mod incident;
mod keys;
mod kube;
mod ledger;
mod safety;
mod settings;
mod trust;

mod audit;
mod budgets;
mod chart;
mod clusters;
mod console;
mod dashboard;
mod duties;
mod interruptions;
mod kubectl;
mod kubectl_parity;
mod mcp;
mod seed;
mod siem;
mod sso;
mod storage_faults;
mod templates;
mod traces;
mod transparency;
