-- Issue 17: two-person rules by group. An identity's groups (JSON array of names: given by an admin, or the
-- groups an OIDC/LDAP sign-in reported), and the groups an action waiting for approval needs one approver
-- from each of (JSON array; NULL: no group requirement). Only added, with defaults: the previous release
-- ignores both columns and its rows read as "no groups".
ALTER TABLE identities ADD COLUMN member_of TEXT NOT NULL DEFAULT '[]';
ALTER TABLE actions ADD COLUMN approval_groups TEXT;
