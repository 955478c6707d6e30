# METADATA
# {
#   "title": "Read-only agents",
#   "description": "Denies every mutation (anything but GET and LIST) by the named agents, or by all agents: they may look, humans act. Names or ids (agt_...) both work.",
#   "custom": {
#     "parameters": {
#       "type": "object",
#       "properties": {
#         "agents": {
#           "type": "array", "items": {"type": "string"}, "default": [],
#           "description": "Agent names or identity ids that may only read."
#         },
#         "all_agents": {
#           "type": "boolean", "default": false,
#           "description": "Make every agent read-only (agents is then ignored)."
#         }
#       },
#       "additionalProperties": false
#     },
#     "example": {"agents": ["report-bot", "agt_0123456789abcdef"]}
#   }
# }
package docketops.templates.read_only_agents

import rego.v1

deny_reasons contains sprintf("agent %s is read-only: %s is a mutation", [name, action_name]) if {
	read_only
	mutation
	name := object.get(input.identity, "name", input.identity.id)
}

read_only if {
	input.identity.kind == "agent"
	params.all_agents
}

read_only if {
	input.identity.kind == "agent"
	input.identity.name in params.agents
}

read_only if {
	input.identity.kind == "agent"
	input.identity.id in params.agents
}

# As in the default policy: every type but the reads is a mutation, so a new type (or none) is never taken for a
# read. A helper rule, negated: OPA evaluates `not input.action.action_type in {...}` as undefined, not true,
# when action_type is missing.
read_action if input.action.action_type in {"GET", "LIST"}

mutation if not read_action

# The action's type for the reason, which must be there even when the type is not.
action_name := input.action.action_type if {
	is_string(input.action.action_type)
} else := "an action without a type"
