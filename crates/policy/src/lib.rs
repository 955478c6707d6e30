//! Risk classification (SPEC §4 step 3) and policy decisions (step 4) for actions.
//!
//! Risk classification is a pure function of its inputs: no I/O, so an auditor can re-run a
//! classification from the ledger. Policy decisions come from Rego: embedded ([`EmbeddedEngine`],
//! the default, with the shipped `policies/default.rego`) or an external OPA server ([`OpaClient`]).
//!
//! # The policy contract
//! Every policy defines `data.docketops.policy.decision` (package `docketops.policy`, rule
//! `decision`) as `{"outcome": "allow" | "deny" | "require_approval", "reasons": [string, …]}`, with an
//! optional `"approvals": N` beside `require_approval` (how many distinct approvers).
//! Anything else — undefined, an unknown outcome, reasons that are not strings — is an error
//! ([`PolicyError`]), which the gateway turns into a refusal in enforce mode (fail closed).
//!
//! The input document:
//! ```json
//! {"identity": {"id": "agt_…", "name": "ci-bot", "kind": "agent", "roles": ["operator"],
//!               "scopes": [{"namespaces": ["staging"], "access": "mutate", "kinds": ["Deployment"]}],
//!               "trust_score": 0},
//!  "action": {"action_type": "SCALE", "namespace": "staging", "resource_kind": "Deployment",
//!             "resource_name": "web-api", "parameters": {"replicas": 5}, "justification": "…"},
//!  "risk": {"level": "MEDIUM", "rules": ["baseline"]},
//!  "preview": {"diff": [{"op": "replace", "path": "/spec/replicas", "from": 2, "to": 5}]},
//!  "time": "2026-11-27T10:00:00Z"}
//! ```
//! `preview` is `null` for reads. `time` is the gateway's clock when it asked, so a policy that uses
//! it (instead of `time.now_ns()`) can be re-run later with the same result. Each [`Decision`]
//! carries `input_sha256`, the SHA-256 of the RFC 8785 canonical form of this document.
//!
//! The default policy: deny an agent's mutation without a justification; require an approval for
//! HIGH risk; allow the rest (LOW/MEDIUM). deny beats require_approval beats allow.
//!
//! Policy templates ([`templates`]) are parameterized Rego files; a rendered one is a package
//! `docketops.templates.<instance>` whose reasons (and approval counts) the default policy takes in.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod decision;
pub mod engine;
pub mod opa;
pub mod risk;
pub mod templates;
pub mod trust;

pub use decision::{Decision, Outcome, PolicyError};
pub use engine::{DEFAULT_POLICY, EmbeddedEngine, PolicyEngine};
pub use opa::OpaClient;
pub use risk::{Classification, FiredRule, RiskConfig, RiskContext, RiskLevel, RiskRule};
pub use templates::{Library, Template, TemplateError};
