//! `docketops verify --checkpoint` and `--receipt`: offline checks against the transparency log, with
//! nothing but files and trusted keys (no server, no database). Exit status as for `verify`: 0 valid,
//! 1 not, 2 usage or I/O error.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use ledger_core::tlog::Hash;
use ledger_core::tlog::checkpoint::{self, WitnessKey};
use ledger_core::tlog::offline::{CheckpointResult, check_against};
use ledger_core::tlog::receipt::{Receipt, ReceiptError};
use ledger_core::{LedgerPublicKey, VerifyReport};
use serde_json::{Value, json};

/// What a checkpoint must satisfy beyond a trusted log signature.
#[derive(Debug)]
pub struct Trust<'a> {
    pub witnesses: &'a [WitnessKey],
    pub quorum: usize,
    /// The origin it must name.
    pub origin: Option<&'a str>,
}

impl Trust<'_> {
    fn open(&self, note: &str, keys: &[LedgerPublicKey]) -> Result<checkpoint::OpenedCheckpoint, String> {
        let opened = checkpoint::open(note, keys, self.witnesses, self.quorum).map_err(|e| e.to_string())?;
        match self.origin {
            Some(origin) if origin != opened.checkpoint.origin => Err(format!(
                "it names the log {:?}, not {origin:?}",
                opened.checkpoint.origin
            )),
            _ => Ok(opened),
        }
    }
}

fn exit(valid: bool) -> ExitCode {
    if valid { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// The bundle (already verified into `report`, with the leaves of its valid entries) against a checkpoint.
pub fn bundle_against(
    report: &VerifyReport,
    leaves: &[Hash],
    path: &Path,
    trusted_keys: &[LedgerPublicKey],
    trust: &Trust<'_>,
    json_output: bool,
) -> anyhow::Result<ExitCode> {
    if trust.witnesses.is_empty() {
        eprintln!(
            "note: no --witness-key given: the checkpoint is only as trustworthy as where you kept it \
             (the log's key could have signed any checkpoint)"
        );
    }
    let note = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    // The keys the bundle's own chain introduced (the log signs checkpoints with its ledger keys), and the
    // --trusted-key ones: a bundle cut before a rotation no longer holds the key its checkpoint was signed with.
    let mut keys: Vec<LedgerPublicKey> = report
        .keys
        .iter()
        .filter_map(|k| LedgerPublicKey::from_hex(&k.info.public_key).ok())
        .collect();
    keys.extend(trusted_keys.iter().cloned());
    let (consistent, outcome) = match trust.open(&note, &keys) {
        Ok(opened) => {
            let check = check_against(leaves, &opened);
            (
                check.result == CheckpointResult::Consistent,
                serde_json::to_value(&check)?,
            )
        }
        Err(error) => (
            false,
            json!({"result": "untrusted", "message": format!("the checkpoint cannot be trusted: {error}")}),
        ),
    };
    if json_output {
        let mut out = serde_json::to_value(report)?;
        out["checkpoint"] = outcome;
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        super::verify::print_report(report, false)?;
        println!(
            "checkpoint: {} ({})",
            outcome["message"].as_str().unwrap_or_default(),
            outcome["result"].as_str().unwrap_or_default()
        );
        if let Some(witnesses) = outcome["cosigned_by"].as_array().filter(|w| !w.is_empty()) {
            println!(
                "cosigned by: {}",
                witnesses
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    Ok(exit(report.valid && consistent))
}

fn reason(error: &ReceiptError) -> &'static str {
    match error {
        ReceiptError::Malformed(_) => "malformed",
        ReceiptError::Entry(_) => "entry_changed",
        ReceiptError::UntrustedEntryKey(_) => "untrusted_key",
        ReceiptError::WrongIndex { .. } => "wrong_index",
        ReceiptError::Checkpoint(_) => "checkpoint_not_trusted",
        ReceiptError::Proof(_) => "not_included",
    }
}

/// A receipt file against the trusted ledger keys (and witnesses).
pub fn receipt(
    path: &Path,
    trusted: &[LedgerPublicKey],
    trust: &Trust<'_>,
    json_output: bool,
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !trusted.is_empty(),
        "--receipt needs --trusted-key HEX: the ledger's public key(s), from `docketops keys list` or GET /api/v1/ledger/keys"
    );
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let receipt = match Receipt::parse(&text) {
        Ok(receipt) => receipt,
        // An edited receipt that no longer parses is invalid (exit 1), not a usage error.
        Err(error) => {
            let out = json!({"valid": false, "reason": reason(&error), "message": error.to_string()});
            match json_output {
                true => println!("{}", serde_json::to_string_pretty(&out)?),
                false => println!("INVALID receipt {}: {error} (malformed)", path.display()),
            }
            return Ok(exit(false));
        }
    };
    let outcome = receipt
        .verify(trusted, trust.witnesses, trust.quorum)
        .and_then(|opened| match trust.origin {
            Some(origin) if origin != opened.checkpoint.origin => {
                Err(ReceiptError::Checkpoint(checkpoint::CheckpointError::Malformed(
                    format!("it names the log {:?}, not {origin:?}", opened.checkpoint.origin),
                )))
            }
            _ => Ok(opened),
        });
    let entry = &receipt.entry;
    let out = match &outcome {
        Ok(opened) => json!({
            "valid": true,
            "entry_id": entry.id,
            "seq": entry.seq,
            "leaf_index": receipt.index,
            "checkpoint": {"origin": opened.checkpoint.origin, "size": opened.checkpoint.size,
                           "signed_by": opened.log_keys,
                           "cosigned_by": opened.cosigned_by.iter().map(|(n, _)| n).collect::<Vec<_>>()},
        }),
        Err(error) => json!({
            "valid": false, "entry_id": entry.id, "seq": entry.seq,
            "reason": reason(error), "message": error.to_string(),
        }),
    };
    if json_output {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        match &outcome {
            Ok(opened) => println!(
                "valid: entry {} (seq {}) is leaf {} of the checkpoint of {} entries of {}, signed by {}{}",
                entry.id,
                entry.seq,
                receipt.index,
                opened.checkpoint.size,
                opened.checkpoint.origin,
                opened.log_keys.join(", "),
                match opened.cosigned_by.is_empty() {
                    true => String::new(),
                    false => format!(
                        ", cosigned by {}",
                        opened
                            .cosigned_by
                            .iter()
                            .map(|(n, _)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
            ),
            Err(error) => println!(
                "INVALID receipt for {} (seq {}): {error} ({})",
                entry.id,
                entry.seq,
                reason(error)
            ),
        }
    }
    Ok(exit(outcome.is_ok()))
}
