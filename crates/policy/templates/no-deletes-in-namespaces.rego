# METADATA
# {
#   "title": "No deletes in namespaces",
#   "description": "Denies every DELETE in the given namespaces (for example production), whoever asks, whatever the risk level and approvals. Optionally only for some resource kinds.",
#   "custom": {
#     "parameters": {
#       "type": "object",
#       "properties": {
#         "namespaces": {
#           "type": "array", "items": {"type": "string"}, "minItems": 1,
#           "description": "Namespace patterns: a name, a prefix ending in * (prod-*), or * for all."
#         },
#         "kinds": {
#           "type": "array", "items": {"type": "string"}, "default": [],
#           "description": "Only DELETEs of these resource kinds (e.g. Deployment, Service); empty: every kind."
#         }
#       },
#       "required": ["namespaces"],
#       "additionalProperties": false
#     },
#     "example": {"namespaces": ["production", "prod-*"]}
#   }
# }
package docketops.templates.no_deletes_in_namespaces

import rego.v1

deny_reasons contains sprintf("DELETE of a %s is not allowed in namespace %s", [kind, namespace]) if {
	input.action.action_type == "DELETE"
	namespace := input.action.namespace
	kind := input.action.resource_kind
	some pattern in params.namespaces
	namespace_matches(pattern, namespace)
	kind_in_scope(kind)
}

kind_in_scope(_) if count(params.kinds) == 0

kind_in_scope(kind) if kind in params.kinds

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
