//! Trust scores: the function lives in [`ledger_core::trust`] (pure, shared with the storage crate, which
//! keeps every identity's score up to date as entries are appended); re-exported here for its callers.

pub use ledger_core::trust::*;
