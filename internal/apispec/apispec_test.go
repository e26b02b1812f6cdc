package apispec_test

import (
	"net/http"
	"testing"

	"github.com/switchboard-voice/switchboard/api"
	"github.com/switchboard-voice/switchboard/internal/apispec"
)

// A delivery is held to the webhooks section: the event described, its
// headers there, its body the event's schema with nothing more.
func TestCheckWebhook(t *testing.T) {
	spec := apispec.Load(t, api.Description())
	header := func(event string) http.Header {
		return http.Header{"Switchboard-Event": {event}, "Switchboard-Delivery": {"01a2433d-ccdb-7b79-bc19-8a58b0730647"},
			"Switchboard-Signature": {"t=1,v1=00"}}
	}
	const ids = `"tenant_id":"01a2433d-ccdb-7b75-9edf-7a8a88719c8a","call_id":"01a2433d-ccdb-7b79-bc19-8a58b0730647"`
	const event = `"id":"01a2433d-ccdb-7b79-bc19-8a58b0730650","event":"call.offered","at":"2026-12-04T22:00:00Z",` + ids
	good := `{` + event + `,"detail":{"operator_id":"01a2433d-ccdb-7b79-bc19-8a58b0730640"}}`
	if err := spec.CheckWebhook(header("call.offered"), []byte(good)); err != nil {
		t.Fatalf("a good delivery: %v", err)
	}
	noSignature := header("call.offered")
	noSignature.Del("Switchboard-Signature")
	for name, bad := range map[string]struct {
		header http.Header
		body   string
	}{
		"an undescribed event":   {header("call.exploded"), good},
		"no signature":           {noSignature, good},
		"another event's body":   {header("call.answered"), good},
		"an undescribed detail":  {header("call.offered"), `{` + event + `,"detail":{"operator_id":"01a2433d-ccdb-7b79-bc19-8a58b0730640","secret":1}}`},
		"a field left out":       {header("call.offered"), `{"id":"01a2433d-ccdb-7b79-bc19-8a58b0730650","event":"call.offered",` + ids + `}`},
		"no event id":            {header("call.offered"), `{"event":"call.offered","at":"2026-12-04T22:00:00Z",` + ids + `,"detail":{"operator_id":"01a2433d-ccdb-7b79-bc19-8a58b0730640"}}`},
		"call.ended without one": {header("call.ended"), `{"id":"01a2433d-ccdb-7b79-bc19-8a58b0730650","event":"call.ended","at":"2026-12-04T22:00:00Z",` + ids + `}`},
	} {
		if err := spec.CheckWebhook(bad.header, []byte(bad.body)); err == nil {
			t.Errorf("%s passed the check", name)
		}
	}
}
