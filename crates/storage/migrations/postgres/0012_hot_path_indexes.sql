-- Issue 14: every query the gateway runs per request is an index lookup or a bounded range scan, whatever
-- the size of the ledger (docs/performance.md lists each query and the index it uses). Only added: the
-- previous release runs unchanged on a database that has them. A plain CREATE INDEX blocks writes to its table
-- while it builds (seconds per million entries): on a large ledger, build them first with
-- CREATE INDEX CONCURRENTLY under the same names (docs/performance.md), and this migration finds them.

-- The expiry scan: pending actions by the end of their approval window.
CREATE INDEX IF NOT EXISTS actions_pending_expiry ON actions (expires_at, id) WHERE status = 'PENDING_APPROVAL';
-- The action list, newest first: unfiltered, and by requester, status or namespace.
CREATE INDEX IF NOT EXISTS actions_created ON actions (created_at, id);
CREATE INDEX IF NOT EXISTS actions_identity_created ON actions (identity_id, created_at, id);
CREATE INDEX IF NOT EXISTS actions_status_created ON actions (status, created_at, id);
CREATE INDEX IF NOT EXISTS actions_namespace_created ON actions (namespace, created_at, id);
-- The dashboard timeline filtered by entry kind or by actor, newest first.
CREATE INDEX IF NOT EXISTS ledger_entries_kind_seq ON ledger_entries (kind, seq);
CREATE INDEX IF NOT EXISTS ledger_entries_actor_seq ON ledger_entries (actor, seq);
-- Identities listed page by page in creation order.
CREATE INDEX IF NOT EXISTS identities_created ON identities (created_at, id) WHERE recorded_entry IS NOT NULL;
