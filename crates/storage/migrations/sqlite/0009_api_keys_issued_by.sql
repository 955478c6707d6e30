-- Who issued each API key (the identity that created its holder, or issued or rotated the key), so that
-- separation of duties can refuse an approver whose key the requester knows. Only added: keys written before
-- (or by a previous release during a rolling upgrade) leave it NULL, and readers then take the actor of the
-- ledger entry that recorded the key (storage::lineage).
ALTER TABLE api_keys ADD COLUMN issued_by TEXT;
