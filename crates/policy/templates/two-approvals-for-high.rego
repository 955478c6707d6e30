# METADATA
# {
#   "title": "Two approvals for HIGH risk",
#   "description": "Actions of the given risk levels (default HIGH) need approval by count distinct approvers (default 2) instead of one; with groups, one approver from each group (a two-person rule by group: two approvers of the same group are not enough). Optionally only in some namespaces.",
#   "custom": {
#     "parameters": {
#       "type": "object",
#       "properties": {
#         "count": {
#           "type": "integer", "minimum": 1, "maximum": 10, "default": 2,
#           "description": "How many distinct approvers (the gateway allows at most 10)."
#         },
#         "levels": {
#           "type": "array", "items": {"type": "string", "enum": ["LOW", "MEDIUM", "HIGH"]}, "minItems": 1,
#           "default": ["HIGH"],
#           "description": "The risk levels this applies to."
#         },
#         "namespaces": {
#           "type": "array", "items": {"type": "string"}, "default": [],
#           "description": "Namespace patterns (a name, a prefix ending in *, or *); empty: everywhere."
#         },
#         "groups": {
#           "type": "array", "items": {"type": "string"}, "default": [],
#           "description": "Groups that must each give one of the approvals (up to 10), e.g. [\"sre\", \"security\"]: a two-person rule by group, where two approvers of the same group are not enough. An identity's groups are set by an admin or reported by its OIDC/LDAP sign-in. The approvals needed are then at least one per group. Empty: any distinct approvers."
#         }
#       },
#       "additionalProperties": false
#     },
#     "example": {"count": 2, "levels": ["HIGH"], "namespaces": ["production"], "groups": ["sre", "security"]}
#   }
# }
package docketops.templates.two_approvals_for_high

import rego.v1

# The reason makes the decision require_approval on its own; the count raises the number of approvers (the
# default policy asks for the largest count any template gives).
approval_reasons contains sprintf("%s risk actions need %d approvals", [input.risk.level, params.count]) if {
	applies
	count(params.groups) == 0
}

approval_reasons contains sprintf("%s risk actions need %d approvals, one from each of the groups %s", [
	input.risk.level, approvers, concat(", ", params.groups),
]) if {
	applies
	count(params.groups) > 0
}

approval_counts contains approvers if applies

approval_groups contains group if {
	applies
	some group in params.groups
}

# At least one approver per group.
approvers := max({params.count, count(params.groups)})

applies if {
	input.risk.level in params.levels
	in_scope
}

in_scope if count(params.namespaces) == 0

in_scope if {
	some pattern in params.namespaces
	namespace_matches(pattern, input.action.namespace)
}

# Namespace patterns as in the risk tiers: exact, "*", or a prefix ending in "*".
namespace_matches(pattern, namespace) if {
	is_string(namespace)
	pattern == namespace
}

namespace_matches("*", namespace) if is_string(namespace)

namespace_matches(pattern, namespace) if {
	is_string(namespace)
	endswith(pattern, "*")
	startswith(namespace, trim_suffix(pattern, "*"))
}
