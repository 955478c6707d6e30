//! Risk classification (SPEC §4 step 3) and, later, policy decisions (step 4) for actions.
//!
//! Pure functions of their inputs: no I/O, so an auditor can re-run a classification from the ledger.
#![forbid(unsafe_code)]

pub mod risk;

pub use risk::{Classification, FiredRule, RiskConfig, RiskContext, RiskLevel, RiskRule};
