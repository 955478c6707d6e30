//! The transparency log's per-request statements: the tiles the appender reads in every append transaction,
//! the log's read API (tiles, entry bundles, checkpoints, proofs, receipts) and the checkpointer's reads.
//! The writes (`INSERT … ON CONFLICT` on a primary key) are left out: they cannot scan.

use super::{HotPath, Sample, Samples, text};
use crate::queries;

/// A witness name that may or may not have cosigned (the plan must not depend on it).
const WITNESS: &str = "witness.example/w1";

pub(super) fn tlog_paths(s: &Samples) -> Vec<HotPath> {
    let path = |name, sql: String, params: Vec<Sample>| HotPath { name, sql, params };
    let size = s.seq.max(1);
    vec![
        path(
            "tlog: last tile (appender, tree size)",
            queries::TLOG_LAST_TILE.into(),
            vec![],
        ),
        path(
            "tlog: last tile length (tree size)",
            queries::TLOG_LAST_TILE_LENGTH.into(),
            vec![],
        ),
        path(
            "tlog: tile",
            queries::TLOG_TILE.into(),
            vec![Sample::Int(0), Sample::Int(size / 2 / 256)],
        ),
        path(
            "tlog: entry bundle",
            queries::TLOG_BUNDLE_HASHES.into(),
            vec![Sample::Int(size / 2), Sample::Int(size / 2 + 255)],
        ),
        path(
            "tlog: catch-up page",
            queries::TLOG_CATCH_UP_PAGE.into(),
            vec![Sample::Int(size - 1), Sample::Int(20_000)],
        ),
        path("tlog: head seq", queries::TLOG_HEAD_SEQ.into(), vec![]),
        path("checkpoints: latest", queries::latest_checkpoint(), vec![]),
        path(
            "checkpoints: at size",
            queries::checkpoint_at(),
            vec![Sample::Int(size)],
        ),
        path(
            "checkpoints: covering (receipts)",
            queries::checkpoint_covering(),
            vec![Sample::Int(size / 2)],
        ),
        path(
            "checkpoints: page",
            queries::checkpoints_before(),
            vec![Sample::Int(size), Sample::Int(100)],
        ),
        path(
            "cosignatures: of checkpoint",
            queries::COSIGNATURES_OF.into(),
            vec![Sample::Int(size)],
        ),
        path(
            "cosignatures: witness's latest",
            queries::WITNESS_SIZE.into(),
            vec![text(WITNESS)],
        ),
    ]
}
