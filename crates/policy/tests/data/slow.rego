# Test fixture: 25 million loop iterations; stopped by the evaluation time limit.
package docketops.policy

import rego.v1

decision := {"outcome": "allow", "reasons": [sprintf("%d", [n])]} if {
	n := count([1 | some i in numbers.range(1, 5000); some j in numbers.range(1, 5000); i + j < 0])
}
