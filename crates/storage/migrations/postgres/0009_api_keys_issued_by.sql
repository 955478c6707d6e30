-- Who issued each API key (the identity that created its holder, or issued or rotated the key), so that
-- separation of duties can refuse an approver whose key the requester knows. Added only: a previous release
-- leaves it NULL, and readers fall back to the actor of the key's recording entry. Keys recorded before this
-- migration are filled from that entry now.
ALTER TABLE api_keys ADD COLUMN issued_by TEXT;
UPDATE api_keys SET issued_by = (SELECT e.actor FROM ledger_entries e WHERE e.id = api_keys.recorded_entry)
    WHERE issued_by IS NULL AND recorded_entry IS NOT NULL;
