# Test policy: HIGH risk needs two distinct approvers; everything else is allowed.
package docketops.policy

import rego.v1

decision := {"outcome": "require_approval", "reasons": ["HIGH risk needs two approvals"], "approvals": 2} if {
	input.risk.level == "HIGH"
} else := {"outcome": "allow", "reasons": ["not HIGH risk"]}
