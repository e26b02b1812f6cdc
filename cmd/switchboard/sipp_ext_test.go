package main

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// TestSIPpExtensions runs SIPp trunks that use SIP extensions against the
// binary (issue 21, item 5): session timers (RFC 4028) refreshed by
// re-INVITE and UPDATE, and one whose refresh stops; UPDATE (RFC 3311)
// with and without SDP; a re-INVITE without SDP; Require: 100rel taken
// (RFC 3262), on a late offer whose answer comes in the PRACK.
// The binary takes a session interval of 1 s and up, so that a test's
// intervals are seconds, not minutes.
func TestSIPpExtensions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := mustSIPpRig(t, ctx, "SWITCHBOARD_SIP_MIN_SE=1s", "SWITCHBOARD_MEDIA_TIMEOUT=60s")
	// call runs a scenario whose call the operator answers, and returns
	// the call's record and trace once it ended.
	call := func(t *testing.T, scenario, from string) (*sb.Call, binaryTrace) {
		t.Helper()
		id := r.answered(ctx, t, scenario, from)
		return waitBinaryCall(t, r.s, r.key, id), r.trace(t, id)
	}
	has := func(tr binaryTrace, e sb.EventType) bool {
		return slices.ContainsFunc(tr.Events, func(ev sb.CallEvent) bool { return ev.Type == e })
	}
	count := func(tr binaryTrace, prefix string, inbound bool) int {
		n := 0
		for _, m := range tr.SIP {
			if m.Inbound == inbound && strings.HasPrefix(m.Message, prefix) {
				n++
			}
		}
		return n
	}

	t.Run("session timer refreshed by re-INVITE and UPDATE", func(t *testing.T) {
		rec, tr := call(t, "uac_session_timer.xml", "15550007001")
		if rec.Status != sb.CallCompleted || rec.HangupBy != sb.PartyCaller {
			t.Errorf("record %q by %q (%s), want completed by the caller", rec.Status, rec.HangupBy, rec.Reason)
		}
		if n, u := count(tr, "INVITE ", true), count(tr, "UPDATE ", true); n != 3 || u != 2 {
			t.Errorf("trace has %d INVITEs and %d UPDATEs from the trunk, want 3 (the call and two refreshes) and 2", n, u)
		}
		if has(tr, sb.EventSessionExpired) || count(tr, "BYE ", false) != 0 {
			t.Errorf("a refreshed session expired: events %v", tr.Events)
		}
	})

	t.Run("session timer whose refresh stops", func(t *testing.T) {
		rec, tr := call(t, "uac_session_timer_stops.xml", "15550007002")
		if rec.Status != sb.CallFailed || rec.HangupBy != sb.PartySystem || rec.FailureLeg != sb.FailedOnTrunk ||
			!strings.Contains(rec.Reason, "session expired") {
			t.Errorf("record %q by %q, failed on %q, reason %q; want failed on the trunk, session expired", rec.Status, rec.HangupBy, rec.FailureLeg, rec.Reason)
		}
		if !has(tr, sb.EventSessionExpired) {
			t.Errorf("no %s event among %v", sb.EventSessionExpired, tr.Events)
		}
		if bye, ok := tr.sent("BYE "); !ok || !strings.Contains(bye, "session expired") {
			t.Errorf("switchboard's BYE does not say why:\n%s", bye)
		}
	})

	t.Run("UPDATE with and without SDP", func(t *testing.T) {
		rec, tr := call(t, "uac_update.xml", "15550007003")
		if rec.Status != sb.CallCompleted || rec.HangupBy != sb.PartyCaller {
			t.Errorf("record %q by %q (%s), want completed by the caller", rec.Status, rec.HangupBy, rec.Reason)
		}
		if !has(tr, sb.EventHeld) || !has(tr, sb.EventResumed) {
			t.Errorf("UPDATE's hold and resume are not on the timeline: %v", tr.Events)
		}
	})

	t.Run("re-INVITE without SDP", func(t *testing.T) {
		rec, tr := call(t, "uac_reinvite_no_sdp.xml", "15550007004")
		if rec.Status != sb.CallCompleted || rec.HangupBy != sb.PartyCaller {
			t.Errorf("record %q by %q (%s), want completed by the caller", rec.Status, rec.HangupBy, rec.Reason)
		}
		// The ACKs' answers held the call and resumed it.
		if !has(tr, sb.EventHeld) || !has(tr, sb.EventResumed) {
			t.Errorf("the ACKs' answers are not on the timeline: %v", tr.Events)
		}
	})

	t.Run("Require: 100rel taken", func(t *testing.T) {
		rec, tr := call(t, "uac_100rel.xml", "15550007005")
		if rec.Status != sb.CallCompleted || rec.HangupBy != sb.PartyCaller || rec.Codec != "PCMA" {
			t.Errorf("record %q by %q (%s), codec %q; want completed by the caller, PCMA (the PRACK's answer)", rec.Status, rec.HangupBy, rec.Reason, rec.Codec)
		}
		if ringing, ok := tr.sent("SIP/2.0 180"); !ok || !strings.Contains(ringing, "\r\nRequire: 100rel\r\n") || !strings.Contains(ringing, "\r\nRSeq: ") {
			t.Errorf("the 180 is not reliable:\n%s", ringing)
		}
		if count(tr, "PRACK ", true) != 1 {
			t.Errorf("trace has %d PRACKs from the trunk, want 1", count(tr, "PRACK ", true))
		}
	})
}

// An operator calls out through a carrier that sends its 183 reliably
// (Require: 100rel): the carrier answers only once PRACKed with the right
// RAck (SIPp checks it), the operator hears the early media, and the
// trace holds the PRACK.
func TestOutboundReliableEarlyMediaIsPRACKed(t *testing.T) {
	m, f, op := mustOutboundService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	carrier, done := carrierSIPp(ctx, t, "uas_prack_early_media.xml")
	outboundTrunk(t, m, f, "carrier", carrier, 1)
	id, err := op.Dial(ctx, "+1 (555) 000-1111")
	if err != nil {
		t.Fatal(err)
	}
	if err := op.WaitConnected(ctx, id); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // the carrier answers two seconds after its PRACK
	if err := op.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rec := waitCallEnded(t, m, f.APIKey, id)
	if rec.Status != sb.CallCompleted || rec.HangupBy != sb.PartyOperator || rec.TimeToAnswerMS < 1900 {
		t.Errorf("record %+v", rec)
	}
	if events := callEvents(t, m, f.APIKey, id); !hasInOrder(events, sb.EventDialing, sb.EventEarlyMedia, sb.EventAnswered, sb.EventHungUp) {
		t.Errorf("events %v", events)
	}
	var tr traceBody
	if code := apiGet(t, m, f.APIKey, "/v1/calls/"+id.String()+"/trace", &tr); code != http.StatusOK {
		t.Fatalf("trace: %d", code)
	}
	var lines []string
	for _, msg := range tr.SIP {
		lines = append(lines, firstLine(msg))
	}
	if joined := strings.Join(lines, " | "); !strings.Contains(joined, "SIP/2.0 183") || !strings.Contains(joined, "PRACK sip:") {
		t.Errorf("trace %q lacks the 183 or the PRACK", lines)
	}
}
