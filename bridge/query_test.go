package bridge

import (
	"strings"
	"testing"
)

// TestQueryLiteral: only id characters reach a visibility query, so no verified-but-hostile value rewrites it.
func TestQueryLiteral(t *testing.T) {
	for _, ok := range []string{"91f96ea1-2997-4f41-86cc-171079eee322", "cx_1.2:3", "A"} {
		if got, valid := queryLiteral(ok); !valid || got != "'"+ok+"'" {
			t.Errorf("queryLiteral(%q) = %q, %v", ok, got, valid)
		}
	}
	for _, bad := range []string{"", "x' OR WorkflowType = 'y", `x" OR "1"="1`, "a b", "a\\b", "é", strings.Repeat("a", maxLiteralLen+1)} {
		if got, valid := queryLiteral(bad); valid {
			t.Errorf("queryLiteral(%q) = %q, want refused", bad, got)
		}
	}
}
