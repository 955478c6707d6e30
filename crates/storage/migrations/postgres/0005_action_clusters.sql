-- Multi-cluster: the cluster an action is for (NULL for actions recorded before clusters had names: the
-- gateway's default cluster then).
ALTER TABLE actions ADD COLUMN cluster TEXT;
