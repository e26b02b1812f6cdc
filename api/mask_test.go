package api

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	sb "github.com/switchboard-voice/switchboard"
)

// fakeTenants knows one tenant's settings.
type fakeTenants struct{ tenant *sb.Tenant }

func (f fakeTenants) CreateTenant(context.Context, *sb.Tenant) error { return nil }
func (f fakeTenants) FindTenantByID(_ context.Context, id sb.ID) (*sb.Tenant, error) {
	if id != f.tenant.ID {
		return nil, sb.Errorf(sb.ENOTFOUND, "tenant not found")
	}
	return f.tenant, nil
}

// Each value call control writes on a timeline that names a party or says
// where someone is, in every event that carries one, as the store gives
// it back: an operator of a tenant that masks callers' numbers reads none
// of them, but what the masking leaves; an operator of a tenant that shows
// numbers reads them but no operator's address; an admin reads everything.
// (A forward is on no operator's call, which is nobody's: only here does
// an operator read one.)
func TestTimelineMaskedForOperators(t *testing.T) {
	const (
		number = "+4930123456"
		uri    = "sip:" + number + "@pbx.example:5070"
		pair   = "host udp 192.0.2.10:40000 ↔ prflx udp 198.51.100.20:50000"
	)
	link := sb.LinkInfo{ICE: "connected", DTLS: "connected", Pair: pair}
	opID, trunkID := sb.NewID(), sb.NewID()
	timeline, err := json.Marshal([]*sb.CallEvent{
		{Type: sb.EventReceived, Detail: map[string]any{"source": "webrtc:203.0.113.7"}},
		{Type: sb.EventAnswered, Detail: map[string]any{"operator_id": opID, "codec": "PCMU", "webrtc": link}},
		{Type: sb.EventWebRTC, Detail: map[string]any{"webrtc": link}},
		{Type: sb.EventTransferred, Detail: map[string]any{"from_operator_id": opID, "to_uri": uri}},
		{Type: sb.EventAnswered, Detail: map[string]any{"transferred_to": uri}},
		{Type: sb.EventReferred, Detail: map[string]any{"uri": uri}},
		{Type: sb.EventForwarded, Detail: map[string]any{"uri": uri, "reason": "no operator free in queue sales within 30s"}},
		{Type: sb.EventAnswered, Detail: map[string]any{"forwarded_to": uri, "codec": "PCMA"}},
		{Type: sb.EventTrunkFailed, Detail: map[string]any{"trunk_id": trunkID, "sip_code": 503, "reason": "No route to +49 30 123456"}},
		{Type: sb.EventRejected, Detail: map[string]any{"transfer": true, "sip_code": 404, "reason": "Not Found: sip:alice@pbx.example"}},
		{Type: sb.EventDTMF, Detail: map[string]any{"digit": "7", "from": "caller"}},
		{Type: sb.EventEnded, Detail: map[string]any{"status": "failed", "reason": "the call could not be placed: dial udp 203.0.113.5:5060: connection refused"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{
		"a number's hidden digits": "0123456", "a number written with spaces": "30 123456", "a URI's user": "alice",
		"the visitor's address": "203.0.113.7", "an address in an error": "203.0.113.5", "a key the caller pressed": `"digit":"7"`,
	}
	operators := map[string]string{"the operator's address": "198.51.100.20", "the service's end of the pair": "192.0.2.10"}
	all := maps.Clone(secrets)
	maps.Copy(all, operators)
	masked := []string{"sip:+******3456@pbx.example:5070", `"webrtc:…"`, "host udp … ↔ prflx udp …",
		"no operator free in queue sales within 30s", "No route to …", "Not Found: …", "the call could not be placed: dial udp …",
		`"digit":"*"`}

	for _, c := range []struct {
		name         string
		role         sb.Role
		masksNumbers bool
		hidden       map[string]string
		shown        []string
	}{
		{"an operator of a tenant that masks numbers", sb.RoleOperator, true, all, masked},
		{"an operator of a tenant that shows numbers", sb.RoleOperator, false, operators, append(slices.Collect(maps.Values(secrets)), "host udp … ↔ prflx udp …")},
		{"an admin of a tenant that masks numbers", sb.RoleAdmin, true, nil, slices.Collect(maps.Values(all))},
	} {
		t.Run(c.name, func(t *testing.T) {
			tenant := &sb.Tenant{ID: sb.NewID(), Privacy: sb.PrivacyPolicy{MaskOperatorNumbers: c.masksNumbers}}
			call := &sb.Call{ID: sb.NewID(), TenantID: tenant.ID, Direction: sb.Inbound, From: number, Status: sb.CallCompleted}
			srv := httptest.NewServer(NewServer(Config{}, Deps{
				Calls:    &fakeCalls{call: call, events: string(timeline)},
				APIKeys:  &fakeKeys{key: &sb.APIKey{ID: sb.NewID(), TenantID: tenant.ID, Role: c.role}},
				Sessions: &fakeSessions{m: map[string]*sb.Session{}},
				Users:    &fakeUsers{},
				Tenants:  fakeTenants{tenant},
			}).Handler())
			defer srv.Close()
			r, err := http.NewRequestWithContext(testCtx(t), http.MethodGet, srv.URL+"/v1/calls/"+call.ID.String()+"/events", nil)
			if err != nil {
				t.Fatal(err)
			}
			r.Header.Set("Authorization", "Bearer sbk_good")
			res, err := srv.Client().Do(r)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || res.StatusCode != http.StatusOK {
				t.Fatalf("the timeline: %d %s %v", res.StatusCode, b, err)
			}
			body := string(b)
			for what, s := range c.hidden {
				if strings.Contains(body, s) {
					t.Errorf("the timeline shows %s (%s)", what, s)
				}
			}
			for _, s := range c.shown {
				if !strings.Contains(body, s) {
					t.Errorf("the timeline does not show %q", s)
				}
			}
			if t.Failed() {
				t.Logf("the timeline: %s", body)
			}
		})
	}
}
