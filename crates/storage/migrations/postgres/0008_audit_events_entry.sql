-- The ledger entry that recorded a bypass: a claim without one (a crash between the claim and the append)
-- can be taken again after a while, so no bypass is lost.
ALTER TABLE audit_events_recorded ADD COLUMN entry_id TEXT;
