# Test fixture: an outcome the gateway does not know.
package docketops.policy

import rego.v1

decision := {"outcome": "maybe", "reasons": ["not sure"]}
