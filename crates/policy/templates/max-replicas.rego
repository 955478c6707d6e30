# METADATA
# {
#   "title": "Max replicas",
#   "description": "Denies asking for more replicas than a limit: per namespace (limits), else a global max. Checks SCALE's replicas and spec.replicas in APPLY manifests and PATCH merge patches.",
#   "custom": {
#     "parameters": {
#       "type": "object",
#       "properties": {
#         "max": {
#           "type": "integer", "minimum": 0,
#           "description": "The limit in namespaces not named in limits; leave it out for no limit there."
#         },
#         "limits": {
#           "type": "object", "additionalProperties": {"type": "integer", "minimum": 0}, "default": {},
#           "description": "Namespace name to its limit, e.g. {\"staging\": 5, \"production\": 50}."
#         }
#       },
#       "additionalProperties": false
#     },
#     "example": {"max": 20, "limits": {"staging": 5, "production": 50}}
#   }
# }
package docketops.templates.max_replicas

import rego.v1

deny_reasons contains sprintf("%d replicas exceed the limit of %d in namespace %s", [replicas, limit, namespace]) if {
	some replicas in requested
	is_number(replicas)
	replicas > limit
	namespace := input.action.namespace
}

# The replica counts the action asks for.
requested contains input.action.parameters.replicas if input.action.action_type == "SCALE"

requested contains input.action.parameters.manifest.spec.replicas if input.action.action_type == "APPLY"

requested contains input.action.parameters.patch.spec.replicas if input.action.action_type == "PATCH"

# `max` is optional: when it was not given, the rendered `params` has no such key, and OPA's type checker refuses
# a plain `params.max` (undefined ref); no limit then outside `limits`.
limit := n if {
	n := params.limits[input.action.namespace]
} else := n if {
	n := object.get(params, "max", null)
	is_number(n)
}
