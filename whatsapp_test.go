package switchboard

import (
	"strings"
	"testing"
)

// A WhatsApp call ID masked keeps its prefix and a digest that tells
// calls apart; an integrator's own reference is left as set.
func TestMaskExternalRef(t *testing.T) {
	a := "wacid.HBgNNDkxNTExMjM0NTY3OBUCABIYIDQ0QTcyRjlDOUI4NUY4QzQ2NTlEMUQ0MUQzQzk2MjI4HBgLMTU1NTAwMDEwMDAVAgAA"
	b := "wacid.HBgNNDkxNTExMjM0NTY3OBUCABIYIDBCMUUzQzVEN0Y5QTJCNEM2RDhFMEYxQTNCNUM3RDlFHBgLMTU1NTAwMDEwMDAVAgAA"
	ma, mb := MaskExternalRef(a), MaskExternalRef(b)
	if !strings.HasPrefix(ma, "wacid.…") || len(ma) > len("wacid.…")+8 || strings.ContainsAny(ma[len("wacid.…"):], "GHIJKLMNOPQRSTUVWXYZghijklmnopqrstuvwxyz+/=") {
		t.Errorf("masked %q", ma)
	}
	if ma == mb || ma != MaskExternalRef(a) {
		t.Errorf("two calls masked %q and %q: want distinct and stable", ma, mb)
	}
	for _, ref := range []string{"", "crm-4711", "ticket 12345"} {
		if got := MaskExternalRef(ref); got != ref {
			t.Errorf("%q masked as %q", ref, got)
		}
	}
}
