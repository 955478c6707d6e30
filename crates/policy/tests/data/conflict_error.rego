# Test fixture: a complete rule with two different values for one input, an evaluation error in every engine
# and every mode (OPA: eval_conflict_error, also without ?strict-builtin-errors=true).
package docketops.policy

import rego.v1

decision := {"outcome": "allow", "reasons": ["a read"]} if input.action.action_type == "GET"

decision := {"outcome": "deny", "reasons": ["a human"]} if input.identity.kind == "human"
