# DocketOps default policy: step 4 of the gateway pipeline (SPEC §4), evaluated after the guardrails
# (hard allowlists and identity scopes) and the risk classification.
#
# Entry point: data.docketops.policy.decision, an object
#     {"outcome": "allow" | "deny" | "require_approval", "reasons": ["...", ...]}
# and, beside "require_approval" only, an optional "approvals": N (1-10), the number of distinct approvers
# the action needs (default 1; here the largest number in approval_counts, when it is more than 1), and an
# optional "approval_groups": ["sre", "security"], groups that must each give one of the approvals (a
# two-person rule by group; here every group in approval_groups).
# The gateway treats an undefined decision, an unknown outcome or reasons that are not strings as a
# failed evaluation (fail closed in enforce mode). A custom policy replaces this file and must keep
# that entry point and shape.
#
# Policy templates (`docketops policy templates list|show|render`, docs/policy-templates.md): a rendered
# template is a package docketops.templates.<instance>, loaded next to this file
# (`docketops serve --policy default.rego --policy rendered.rego`). Its partial sets deny_reasons,
# approval_reasons, approval_counts and approval_groups join this policy's below, so a template can deny an action or ask
# for (more) approvals, never allow what this policy would not.
#
# Input document (built by the gateway; everything in it is recorded in the ledger, so an auditor can
# re-run the decision from the input hash in the policy.decided entry):
#     {"identity": {"id": "agt_...", "name": "ci-bot", "kind": "agent" | "human", "roles": ["operator"],
#                   "groups": ["platform"],
#                   "scopes": [{"namespaces": ["staging"], "access": "read" | "mutate", "kinds": ["Deployment"]}],
#                   "trust_score": 0},
#      "action":   {"action_type": "SCALE", "namespace": "staging", "resource_kind": "Deployment",
#                   "resource_name": "web-api", "parameters": {"replicas": 5}, "justification": "..."},
#      "risk":     {"level": "LOW" | "MEDIUM" | "HIGH", "rules": ["baseline", ...]},
#      "preview":  {"diff": [{"op": "replace", "path": "/spec/replicas", "from": 2, "to": 5}]} or null for reads,
#      "time":     "2026-11-27T10:00:00Z"}
# Use input.time rather than time.now_ns(), so that a decision can be recomputed later.
#
# Default rules:
#   - an agent mutating without a justification            -> deny
#   - a HIGH risk action (or a missing/unknown risk level)  -> require_approval
#   - otherwise (LOW or MEDIUM risk)                        -> allow
#   - and whatever loaded templates add (deny or require_approval reasons, approval counts)
# deny beats require_approval beats allow; the reasons are all reasons of the winning outcome, sorted.
package docketops.policy

import rego.v1

# Reads; every other action type counts as a mutation, so a new type is never mistaken for a read, and an
# action without a type is a mutation too.
#
# Negate helper rules, never a call or a membership test on the input: OPA evaluates
# `not input.action.action_type in read_action_types` as undefined (not true) when action_type is missing,
# as it binds the call's arguments outside the `not`, while the embedded engine (regorus) evaluates it as
# true. `not read_action` is true in both.
read_action_types := {"GET", "LIST"}

read_action if input.action.action_type in read_action_types

mutation if not read_action

# A justification must be a string with something besides white space in it.
justified if {
	is_string(input.action.justification)
	trim_space(input.action.justification) != ""
}

deny_reasons contains "mutations by agents need a justification" if {
	input.identity.kind == "agent"
	mutation
	not justified
}

approval_reasons contains "HIGH risk actions need an approval" if input.risk.level == "HIGH"

# The gateway always sends a level; should it ever not, ask a human rather than allow (a helper rule, negated,
# for the reason above).
known_level if input.risk.level in {"LOW", "MEDIUM", "HIGH"}

approval_reasons contains "missing or unknown risk level needs an approval" if not known_level

allow_reasons contains sprintf("%s risk within scope", [input.risk.level]) if {
	input.risk.level in {"LOW", "MEDIUM"}
}

# Rendered templates' contributions (none are loaded by default: these sets are then empty).
deny_reasons contains reason if {
	some reason in data.docketops.templates[_].deny_reasons
}

approval_reasons contains reason if {
	some reason in data.docketops.templates[_].approval_reasons
}

# How many distinct approvers a require_approval needs: the largest count asked for, if more than one.
approval_counts contains n if {
	some n in data.docketops.templates[_].approval_counts
}

# Groups that must each give one of the approvals: every group any template names.
approval_groups contains group if {
	some group in data.docketops.templates[_].approval_groups
}

# The optional fields of a require_approval decision: present only when they say more than the defaults.
approval_fields["approvals"] := max(approval_counts) if max(approval_counts) > 1

approval_fields["approval_groups"] := sort(approval_groups) if count(approval_groups) > 0

decision := {"outcome": "deny", "reasons": sort(deny_reasons)} if {
	count(deny_reasons) > 0
} else := object.union({"outcome": "require_approval", "reasons": sort(approval_reasons)}, approval_fields) if {
	count(approval_reasons) > 0
} else := {"outcome": "allow", "reasons": sort(allow_reasons)}
