# Test fixture: reasons that are not all strings.
package docketops.policy

import rego.v1

decision := {"outcome": "allow", "reasons": ["fine", 42]}
