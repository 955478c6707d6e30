# Test fixture: a builtin fails at evaluation time (regorus raises builtin errors strictly).
package docketops.policy

import rego.v1

decision := {"outcome": "allow", "reasons": [sprintf("%d", [to_number(input.action.resource_name)])]}
