//! The last verification of the stored ledger by the gateway (the API's or the dashboard's), kept in the
//! `settings` table so every replica's overview can tell when the ledger was last checked and what was found.

use ledger_core::VerifyReport;
use serde::{Deserialize, Serialize};

use crate::{StorageError, Store};

/// The setting's name.
const LAST_VERIFICATION: &str = "last_verification";

/// A finished verification, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationRecord {
    /// When it finished (RFC 3339 UTC).
    pub at: String,
    /// Who asked for it (an identity id).
    pub by: String,
    /// Whether every entry verified.
    pub valid: bool,
    /// How many entries verified.
    pub entries_checked: u64,
    /// The last entry that verified, if any.
    pub head_seq: Option<u64>,
    /// The first invalid entry, if any.
    pub first_invalid_seq: Option<u64>,
}

impl VerificationRecord {
    /// The record of `report`, made by `by` at `at`.
    pub fn of(report: &VerifyReport, by: &str, at: &str) -> VerificationRecord {
        VerificationRecord {
            at: at.to_owned(),
            by: by.to_owned(),
            valid: report.valid,
            entries_checked: report.entries_checked,
            head_seq: report.head.as_ref().map(|head| head.seq),
            first_invalid_seq: report.first_invalid.as_ref().map(|invalid| invalid.seq),
        }
    }
}

impl Store {
    /// Keeps `record` as the last verification (replacing the one before).
    pub async fn record_verification(&self, record: &VerificationRecord) -> Result<(), StorageError> {
        let value = serde_json::to_string(record).expect("a record serializes");
        self.set_setting(LAST_VERIFICATION, &value).await
    }

    /// The last verification recorded, if any (an unreadable record counts as none).
    pub async fn last_verification(&self) -> Result<Option<VerificationRecord>, StorageError> {
        let value = self.setting(LAST_VERIFICATION).await?;
        Ok(value.and_then(|text| serde_json::from_str(&text).ok()))
    }
}
