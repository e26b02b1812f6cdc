package callctl_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/callctl"
)

// ends is a CallRecorder that keeps nothing but each call's final
// status.
type ends chan sb.CallStatus

func (e ends) CreateCall(context.Context, *sb.Call) error            { return nil }
func (e ends) AddCallEvents(context.Context, ...*sb.CallEvent) error { return nil }
func (e ends) AddCallTrace(context.Context, *sb.CallTrace) error     { return nil }
func (e ends) WriteCallStep(ctx context.Context, s *sb.CallStep) error {
	return s.WriteApart(ctx, e)
}
func (e ends) UpdateCall(_ context.Context, c *sb.Call) error {
	if c.EndedAt != nil {
		e <- c.Status
	}
	return nil
}

// answering places each call on a new leg that is answered at once and
// hung up.
type answering struct{}

func (answering) Dial(context.Context, sb.OutboundRoute, string) (sb.OutboundLeg, error) {
	out := &outLeg{media: &port{codec: sb.PCMU}, events: make(chan sb.LegEvent, 4)}
	out.events <- sb.LegEvent{Kind: sb.LegAnswered}
	out.events <- sb.LegEvent{Kind: sb.LegHungUp}
	return out, nil
}

// BenchmarkForwardedCall is call control's part of a call sent on to a
// SIP URI by a queue nobody staffs, as switchboard-load's SIPp run makes
// them: dispatched, forwarded, answered, hung up by the forwarded party, and its
// records written.
func BenchmarkForwardedCall(b *testing.B) {
	fwd := &sb.Queue{ID: sb.NewID(), TenantID: tenantA, Name: "forward", Numbers: []string{"+15550001111"},
		Overflow: sb.Overflow{Kind: sb.OverflowURI, URI: "sip:uas@127.0.0.1:5080"}}
	rec := make(ends, 1)
	sw := callctl.NewSwitch(rec, callctl.WithQueues(newQueues(fwd)), callctl.WithDialer(answering{}, nil),
		callctl.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer sw.Close()
	trunk := &sb.Trunk{ID: sb.NewID(), TenantID: tenantA, Name: "sipp"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l := newLeg(sb.PCMU)
		sw.DispatchInbound(&sb.InboundCall{Trunk: trunk, From: "+15551230000", To: fwd.Numbers[0], Source: "udp:127.0.0.1:5060", SIPCallID: "bench@pbx", Leg: l})
		if status := <-rec; status != sb.CallCompleted {
			b.Fatalf("the call ended %q, want completed", status)
		}
	}
}
