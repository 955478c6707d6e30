# METADATA
# {
#   "title": "Change window",
#   "description": "Mutations are allowed only on the given weekdays between start_hour and end_hour (UTC, from the input's time, so a decision can be recomputed later); outside the window they are denied, or need an approval. Reads are never affected.",
#   "custom": {
#     "parameters": {
#       "type": "object",
#       "properties": {
#         "weekdays": {
#           "type": "array", "items": {"type": "string", "enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
#           "minItems": 1, "default": ["mon", "tue", "wed", "thu", "fri"],
#           "description": "The days (UTC) on which the window is open."
#         },
#         "start_hour": {
#           "type": "integer", "minimum": 0, "maximum": 23, "default": 9,
#           "description": "The hour (UTC) the window opens, inclusive."
#         },
#         "end_hour": {
#           "type": "integer", "minimum": 0, "maximum": 24, "default": 17,
#           "description": "The hour (UTC) the window closes, exclusive; smaller than start_hour for a window across midnight, equal for all day."
#         },
#         "outside": {
#           "type": "string", "enum": ["deny", "require_approval"], "default": "deny",
#           "description": "What happens to a mutation outside the window."
#         },
#         "namespaces": {
#           "type": "array", "items": {"type": "string"}, "default": [],
#           "description": "Namespace patterns (a name, a prefix ending in *, or *); empty: everywhere."
#         }
#       },
#       "additionalProperties": false
#     },
#     "example": {"weekdays": ["mon", "tue", "wed", "thu"], "start_hour": 8, "end_hour": 16, "namespaces": ["production"]}
#   }
# }
package docketops.templates.change_window

import rego.v1

deny_reasons contains outside_reason if {
	params.outside == "deny"
	restricted
}

approval_reasons contains outside_reason if {
	params.outside == "require_approval"
	restricted
}

restricted if {
	mutation
	in_scope
	not within_window
}

outside_reason := sprintf("%s is outside the change window (%s, %d:00 to %d:00 UTC)", [
	action_name,
	concat(" ", params.weekdays),
	params.start_hour,
	params.end_hour,
])

# The gateway's clock when it asked (RFC 3339): never time.now_ns(), so that a replay decides the same. A
# missing time is outside every window.
now_ns := time.parse_rfc3339_ns(input.time) if is_string(input.time)

weekday_names := {
	"Monday": "mon", "Tuesday": "tue", "Wednesday": "wed", "Thursday": "thu", "Friday": "fri",
	"Saturday": "sat", "Sunday": "sun",
}

within_window if {
	weekday_names[time.weekday(now_ns)] in params.weekdays
	[hour, _, _] := time.clock(now_ns)
	within_hours(hour)
}

within_hours(hour) if {
	params.start_hour < params.end_hour
	hour >= params.start_hour
	hour < params.end_hour
}

# Across midnight (e.g. 22 to 6), or all day when start and end are equal.
within_hours(hour) if {
	params.start_hour >= params.end_hour
	hour >= params.start_hour
}

within_hours(hour) if {
	params.start_hour >= params.end_hour
	hour < params.end_hour
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
