package callctl_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/callctl"
	"github.com/switchboard-voice/switchboard/media"
)

var tenantA, tenantB = sb.NewID(), sb.NewID()

func newSwitch(t *testing.T, opts ...callctl.SwitchOption) (*callctl.Switch, *recorder) {
	t.Helper()
	rec := newRecorder()
	sw := callctl.NewSwitch(rec, append([]callctl.SwitchOption{callctl.WithRingTimeout(2 * time.Second)}, opts...)...)
	t.Cleanup(func() { sw.Close() })
	return sw, rec
}

func inbound(l *leg) *sb.InboundCall {
	trunk := &sb.Trunk{ID: sb.NewID(), TenantID: tenantA, Name: "pbx"}
	return &sb.InboundCall{Trunk: trunk, From: "+15551230000", To: "+15557654321", Source: "udp:127.0.0.1:5060", SIPCallID: "abc@pbx", Leg: l}
}

func goAvailable(t *testing.T, sw *callctl.Switch, op *operator) {
	t.Helper()
	if err := sw.Available(op); err != nil {
		t.Fatal(err)
	}
	if n := op.next(t); n != "available" {
		t.Fatalf("after Available: %q", n)
	}
}

// connectedCall offers the leg's call to a new operator of tenant A, who
// takes it.
func connectedCall(t *testing.T, sw *callctl.Switch, l *leg) (*operator, sb.ID) {
	t.Helper()
	op := newOperator(tenantA)
	goAvailable(t, sw, op)
	sw.DispatchInbound(inbound(l))
	callID := op.nextOffer(t)
	if err := sw.Accept(op.id, callID); err != nil {
		t.Fatal(err)
	}
	if n := op.next(t); n != "connected" {
		t.Fatalf("got %q, want connected", n)
	}
	return op, callID
}

func TestNoOperatorRejects480(t *testing.T) {
	sw, rec := newSwitch(t)
	l := newLeg(sb.PCMU)
	sw.DispatchInbound(inbound(l))
	c := rec.waitEnded(t)
	if c.Status != sb.CallNoAnswer || c.SIPCode != 480 || c.Reason != "no operator available" || c.HangupBy != sb.PartySystem {
		t.Fatalf("record: %+v", c)
	}
	if got := l.did(); !slices.Equal(got, []string{"reject 480 no operator available"}) {
		t.Fatalf("leg actions %q", got)
	}
	if !l.closed {
		t.Fatal("leg not closed")
	}
	want := []sb.EventType{sb.EventReceived, sb.EventTrying, sb.EventRejected, sb.EventEnded}
	if got := rec.eventsOf(c.ID); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

// A refused INVITE's record says it ended only once its timeline and trace
// are stored, as every call's does: whoever finds the refusal can read why.
func TestRefusalRecordedFinalLast(t *testing.T) {
	sw, rec := newSwitch(t)
	trunk := &sb.Trunk{ID: sb.NewID(), TenantID: tenantA, Name: "pbx"}
	trace := []sb.SIPMessage{{Inbound: true, Message: "INVITE sip:2999@sb SIP/2.0\r\n\r\n"}, {Message: "SIP/2.0 404 Not Found\r\n\r\n"}}
	sw.RecordRefused(&sb.RefusedCall{Trunk: trunk, From: "3000", To: "2999", Source: "udp:127.0.0.1:5060", SIPCallID: "refused@pbx",
		Code: 404, Reason: "number not served here", Leg: sb.FailedOnTrunk, Stage: sb.StageRouting, Trace: trace})
	c := rec.waitEnded(t)
	if c.Status != sb.CallRejected || c.SIPCode != 404 || c.FailureStage != sb.StageRouting || c.TenantID != tenantA || c.To != "2999" {
		t.Fatalf("record: %+v", c)
	}
	rec.mu.Lock()
	stored, tr := rec.storedAtEnd[c.ID], rec.traces[c.ID]
	rec.mu.Unlock()
	want := []sb.EventType{sb.EventReceived, sb.EventRejected, sb.EventEnded}
	if !stored.traced || !slices.Equal(stored.events, want) {
		t.Errorf("when the final record was written: events %v, trace stored %v; want %v and the trace", stored.events, stored.traced, want)
	}
	if tr == nil || len(tr.SIP) != 2 || tr.CallID != c.ID {
		t.Errorf("trace %+v, want the refusal's two messages", tr)
	}
}

// Pressing hold silences both ways at once, while the trunk is still being
// told: what the operator says next never reaches the caller. If the trunk
// refuses the hold, audio flows again; once it agrees, it stays silent
// until the operator takes the caller back. The operator is told when a
// hold they asked for did not happen.
func TestHoldSilencesBeforeTheTrunkAnswers(t *testing.T) {
	sw, _ := newSwitch(t)
	l := newLeg(sb.PCMU)
	l.holds = make(chan error)
	op, callID := connectedCall(t, sw, l)
	seq := uint16(0)
	talk := func() (toCaller, toOperator int) {
		before, beforeOp := len(l.media.packets()), len(op.media.packets())
		seq++
		op.media.deliver(append(media.AppendHeader(nil, false, 0, seq, uint32(seq)*160, 0x2222), bytes.Repeat([]byte{0xA0}, 160)...))
		l.media.deliver(append(media.AppendHeader(nil, false, 0, seq, uint32(seq)*160, 0x1111), bytes.Repeat([]byte{0x10}, 160)...))
		return len(l.media.packets()) - before, len(op.media.packets()) - beforeOp
	}
	if a, b := talk(); a != 1 || b != 1 {
		t.Fatalf("before the hold: %d to the caller, %d to the operator; want 1 each", a, b)
	}
	waitDid := func(action string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !slices.Contains(l.did(), action); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("leg actions %q, want %q", l.did(), action)
			}
		}
	}
	// The trunk refuses: silent while it is asked, audio again after.
	if err := sw.Hold(op.id, callID, true); err != nil {
		t.Fatal(err)
	}
	waitDid("hold")
	if a, b := talk(); a != 0 || b != 0 {
		t.Errorf("while the trunk is asked to hold: %d to the caller, %d to the operator; want none", a, b)
	}
	flowsAgain := func(after string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if a, b := talk(); a == 1 && b == 1 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("audio did not flow again after %s", after)
			}
		}
	}
	l.holds <- errors.New("488 Not Acceptable Here")
	if n := op.next(t); n != "held false" {
		t.Errorf("after the trunk refused the hold the operator was told %q, want held false", n)
	}
	flowsAgain("the trunk refused the hold")
	// The trunk agrees: silent until the operator takes the caller back.
	if err := sw.Hold(op.id, callID, true); err != nil {
		t.Fatal(err)
	}
	l.holds <- nil
	if a, b := talk(); a != 0 || b != 0 {
		t.Errorf("held: %d to the caller, %d to the operator; want none", a, b)
	}
	if err := sw.Hold(op.id, callID, false); err != nil {
		t.Fatal(err)
	}
	waitDid("unhold")
	if a, b := talk(); a != 0 || b != 0 {
		t.Errorf("while the trunk is asked to resume: %d to the caller, %d to the operator; want none", a, b)
	}
	l.holds <- nil
	flowsAgain("the resume")
}

func TestOtherTenantsOperatorIsNotOffered(t *testing.T) {
	sw, rec := newSwitch(t)
	goAvailable(t, sw, newOperator(tenantB))
	sw.DispatchInbound(inbound(newLeg(sb.PCMU)))
	if c := rec.waitEnded(t); c.Status != sb.CallNoAnswer || c.OperatorID != nil {
		t.Fatalf("record: %+v", c)
	}
}

func TestAnswerBridgeAndCallerHangup(t *testing.T) {
	sw, rec := newSwitch(t)
	l := newLeg(sb.Codec{Name: "PCMU", PayloadType: 0, ClockRate: 8000, DTMFType: 101})
	op, _ := connectedCall(t, sw, l)
	// Caller → operator: 50 packets of a known pattern, then a DTMF '5'.
	for i := 0; i < 50; i++ {
		l.media.deliver(append(media.AppendHeader(nil, i == 0, 0, uint16(100+i), uint32(i*160), 0x1111), bytes.Repeat([]byte{byte(i)}, 160)...))
	}
	for i := 0; i < 3; i++ { // the end packet, sent three times
		l.media.deliver(media.AppendDTMF(media.AppendHeader(nil, false, 101, uint16(150+i), 50*160, 0x1111), media.DTMFEvent{Event: 5, End: true, Duration: 800}))
	}
	// Operator → caller.
	for i := 0; i < 20; i++ {
		op.media.deliver(append(media.AppendHeader(nil, false, 0, uint16(7+i), uint32(i*160), 0x2222), bytes.Repeat([]byte{0xA0 + byte(i)}, 160)...))
	}
	got := op.media.packets()
	if len(got) != 53 {
		t.Fatalf("operator got %d packets, want 53", len(got))
	}
	for i := 0; i < 50; i++ {
		h, _ := media.ParseHeader(got[i])
		if h.PayloadType != 0 || !bytes.Equal(got[i][h.PayloadOffset:], bytes.Repeat([]byte{byte(i)}, 160)) {
			t.Fatalf("packet %d altered: pt %d", i, h.PayloadType)
		}
		if i > 0 {
			prev, _ := media.ParseHeader(got[i-1])
			if h.Seq != prev.Seq+1 || h.Timestamp != prev.Timestamp+160 || h.SSRC != prev.SSRC {
				t.Fatalf("packet %d not continuous: %+v after %+v", i, h, prev)
			}
		}
	}
	if h, _ := media.ParseHeader(got[50]); h.PayloadType != 126 {
		t.Fatalf("DTMF payload type %d, want the operator's 126", h.PayloadType)
	}
	if n := len(l.media.packets()); n != 20 {
		t.Fatalf("caller got %d packets, want 20", n)
	}

	l.events <- sb.LegEvent{Kind: sb.LegHungUp}
	c := rec.waitEnded(t)
	if c.Status != sb.CallCompleted || c.HangupBy != sb.PartyCaller || c.OperatorID == nil || *c.OperatorID != op.id {
		t.Fatalf("record: %+v", c)
	}
	if c.FromCaller.Packets != 53 || c.ToCaller.Packets != 20 || c.FromCaller.Lost != 0 {
		t.Fatalf("stats: from %+v to %+v", c.FromCaller, c.ToCaller)
	}
	// The operator is free again before being told the call ended.
	if n := op.next(t); n != "available" {
		t.Fatalf("operator after call: %q", n)
	}
	if n := op.next(t); n != "ended caller hung up" {
		t.Fatalf("operator told %q", n)
	}
	events := rec.eventsOf(c.ID)
	for _, want := range []sb.EventType{sb.EventOffered, sb.EventRinging, sb.EventAnswered, sb.EventDTMF, sb.EventHungUp, sb.EventEnded} {
		if !slices.Contains(events, want) {
			t.Fatalf("events %v lack %s", events, want)
		}
	}
	if got := l.did(); !slices.Equal(got, []string{"ring", "answer"}) {
		t.Fatalf("leg actions %q", got)
	}
	// After the call the operator's next call goes on the same stream.
	if p := op.media.packets(); len(p) != 53 {
		t.Fatalf("packets after hangup: %d", len(p))
	}
}

func TestDeclineMovesToNextOperatorLongestIdleFirst(t *testing.T) {
	sw, rec := newSwitch(t)
	first, second := newOperator(tenantA), newOperator(tenantA)
	goAvailable(t, sw, first)
	goAvailable(t, sw, second)
	l := newLeg(sb.PCMU)
	sw.DispatchInbound(inbound(l))

	callID := first.nextOffer(t) // idle longest
	if err := sw.Decline(first.id, callID); err != nil {
		t.Fatal(err)
	}
	if got := second.nextOffer(t); got != callID {
		t.Fatal("second operator offered another call")
	}
	if err := sw.Decline(second.id, callID); err != nil {
		t.Fatal(err)
	}
	c := rec.waitEnded(t)
	if c.Status != sb.CallRejected || c.SIPCode != 480 {
		t.Fatalf("record: %+v", c)
	}
	if err := sw.Accept(first.id, callID); err == nil || sb.ErrorCode(err) != sb.ENOTFOUND {
		t.Fatalf("accepting an ended call: %v", err)
	}
}

func TestRingTimeoutSetsOperatorAway(t *testing.T) {
	sw, rec := newSwitch(t, callctl.WithRingTimeout(50*time.Millisecond))
	op := newOperator(tenantA)
	goAvailable(t, sw, op)
	sw.DispatchInbound(inbound(newLeg(sb.PCMU)))
	op.nextOffer(t)
	if n := op.next(t); n != "revoke not answered in time" {
		t.Fatalf("got %q", n)
	}
	if n := op.next(t); n != "away missed call" {
		t.Fatalf("got %q", n)
	}
	if c := rec.waitEnded(t); c.Status != sb.CallNoAnswer || c.Reason != "no operator answered" {
		t.Fatalf("record: %+v", c)
	}
}

// ringingCall is a call from a trunk ringing an available operator: its
// recorder, the operator and the caller's leg.
func ringingCall(t *testing.T) (*recorder, *operator, *leg) {
	t.Helper()
	sw, rec := newSwitch(t)
	op := newOperator(tenantA)
	goAvailable(t, sw, op)
	l := newLeg(sb.PCMU)
	sw.DispatchInbound(inbound(l))
	op.nextOffer(t)
	return rec, op, l
}

func TestCancelWhileRinging(t *testing.T) {
	rec, op, l := ringingCall(t)
	l.events <- sb.LegEvent{Kind: sb.LegCanceled}
	c := rec.waitEnded(t)
	if c.Status != sb.CallCanceled || c.HangupBy != sb.PartyCaller || c.SIPCode != 487 {
		t.Fatalf("record: %+v", c)
	}
	if n := op.next(t); n != "revoke caller hung up" {
		t.Fatalf("got %q", n)
	}
	if n := op.next(t); n != "available" {
		t.Fatalf("got %q", n)
	}
}

// A caller's INVITE that the SIP side ended itself while it rang (its
// reliable 180 was never acknowledged, RFC 3262) ends the call as failed
// on the trunk with the code the caller got: the offer is withdrawn, the
// operator free, and the caller refused no second time.
func TestCallerLegFailedWhileRinging(t *testing.T) {
	rec, op, l := ringingCall(t)
	l.events <- sb.LegEvent{Kind: sb.LegFailed, Code: 500, Reason: "no PRACK for our reliable 180 (RFC 3262)"}
	c := rec.waitEnded(t)
	if c.Status != sb.CallFailed || c.HangupBy != sb.PartySystem || c.SIPCode != 500 || c.FailureLeg != sb.FailedOnTrunk ||
		c.FailureStage != sb.StageRinging || !strings.Contains(c.Reason, "no PRACK") {
		t.Fatalf("record: %+v", c)
	}
	if n := op.next(t); !strings.HasPrefix(n, "revoke no PRACK") {
		t.Fatalf("got %q", n)
	}
	if n := op.next(t); n != "available" {
		t.Fatalf("got %q", n)
	}
	for _, a := range l.did() {
		if strings.HasPrefix(a, "reject") || strings.HasPrefix(a, "bye") {
			t.Errorf("the caller was refused again: %q", l.did())
		}
	}
	if !slices.Contains(rec.eventsOf(c.ID), sb.EventRejected) {
		t.Errorf("events %v lack %s", rec.eventsOf(c.ID), sb.EventRejected)
	}
}

func TestOperatorHangupAndDisconnect(t *testing.T) {
	for _, how := range []string{"hangup", "disconnect"} {
		t.Run(how, func(t *testing.T) {
			sw, rec := newSwitch(t)
			op := newOperator(tenantA)
			goAvailable(t, sw, op)
			l := newLeg(sb.PCMU)
			sw.DispatchInbound(inbound(l))
			id := op.nextOffer(t)
			if err := sw.Accept(op.id, id); err != nil {
				t.Fatal(err)
			}
			op.next(t) // connected
			if how == "hangup" {
				if err := sw.Hangup(op.id, id); err != nil {
					t.Fatal(err)
				}
			} else {
				sw.Disconnected(op.id)
			}
			c := rec.waitEnded(t)
			if c.Status != sb.CallCompleted || c.HangupBy != sb.PartyOperator {
				t.Fatalf("record: %+v", c)
			}
			if acts := l.did(); !strings.HasPrefix(acts[len(acts)-1], "bye operator") {
				t.Fatalf("leg actions %q", acts)
			}
		})
	}
}

// An answered call whose media stopped, whose session refresh never came
// (RFC 4028), or whose media path failed (ICE, or a DTLS certificate that
// does not match the SDP), is ended with a BYE that says so, and the
// record and the timeline say why.
func TestLegFailureEndsCall(t *testing.T) {
	for _, c := range []struct {
		ev     sb.LegEvent
		reason string
		stage  string
		bye    string
		event  sb.EventType
	}{
		{sb.LegEvent{Kind: sb.LegMediaTimeout}, "no media from the caller (RTP timeout)", sb.StageMedia, "bye RTP timeout", sb.EventMediaTimeout},
		{sb.LegEvent{Kind: sb.LegSessionExpired, Reason: "no session refresh within 1m30s (RFC 4028)"}, "session expired: no session refresh", sb.StageMedia, "bye session expired", sb.EventSessionExpired},
		{sb.LegEvent{Kind: sb.LegMediaFailed, Reason: "DTLS handshake refused: the certificate does not match"}, "media failed: DTLS handshake refused", sb.StageMediaSetup, "bye media failed", sb.EventMediaFailed},
	} {
		t.Run(c.ev.Kind.String(), func(t *testing.T) {
			sw, rec := newSwitch(t)
			op := newOperator(tenantA)
			goAvailable(t, sw, op)
			l := newLeg(sb.PCMU)
			sw.DispatchInbound(inbound(l))
			if err := sw.Accept(op.id, op.nextOffer(t)); err != nil {
				t.Fatal(err)
			}
			op.next(t)
			l.events <- c.ev
			ended := rec.waitEnded(t)
			if ended.Status != sb.CallFailed || ended.HangupBy != sb.PartySystem || ended.FailureLeg != sb.FailedOnTrunk ||
				ended.FailureStage != c.stage || !strings.Contains(ended.Reason, c.reason) {
				t.Fatalf("record: %+v", ended)
			}
			if acts := l.did(); acts[len(acts)-1] != c.bye {
				t.Fatalf("leg actions %q", acts)
			}
			if !slices.Contains(rec.eventsOf(ended.ID), c.event) {
				t.Errorf("events %v lack %s", rec.eventsOf(ended.ID), c.event)
			}
		})
	}
}

func TestCloseEndsCallsAndRefusesNew(t *testing.T) {
	rec := newRecorder()
	sw := callctl.NewSwitch(rec)
	op := newOperator(tenantA)
	goAvailable(t, sw, op)
	l := newLeg(sb.PCMU)
	sw.DispatchInbound(inbound(l))
	if err := sw.Accept(op.id, op.nextOffer(t)); err != nil {
		t.Fatal(err)
	}
	op.next(t)
	sw.Close()
	if c := rec.waitEnded(t); c.HangupBy != sb.PartySystem || c.Reason != "service shutting down" {
		t.Fatalf("record: %+v", c)
	}
	if sw.ActiveCalls() != 0 {
		t.Fatal("calls left after Close")
	}
	late := newLeg(sb.PCMU)
	sw.DispatchInbound(inbound(late))
	if c := rec.waitEnded(t); c.SIPCode != 503 {
		t.Fatalf("call after Close: %+v", c)
	}
}

func TestBridgeConvertsLawsAndDropsUnnegotiated(t *testing.T) {
	caller := &port{codec: sb.PCMA}
	opPort := &port{codec: sb.Codec{Name: "PCMU", PayloadType: 0, ClockRate: 8000}}
	b := callctl.NewBridge(caller, opPort)
	b.Start()
	pcma := []byte{media.LinearToAlaw(1000), media.LinearToAlaw(-1000)}
	caller.deliver(append(media.AppendHeader(nil, false, 8, 1, 0, 9), pcma...))
	caller.deliver(append(media.AppendHeader(nil, false, 13, 2, 160, 9), 0x40)) // comfort noise
	b.Stop()
	caller.deliver(append(media.AppendHeader(nil, false, 8, 3, 320, 9), pcma...))
	got := opPort.packets()
	if len(got) != 1 {
		t.Fatalf("%d packets relayed, want 1", len(got))
	}
	h, _ := media.ParseHeader(got[0])
	if h.PayloadType != 0 {
		t.Fatalf("payload type %d", h.PayloadType)
	}
	for i, want := range []int16{1000, -1000} {
		if v := media.UlawToLinear(got[0][h.PayloadOffset+i]); v < want-64 || v > want+64 {
			t.Fatalf("sample %d = %d, want about %d", i, v, want)
		}
	}
	if from, _ := b.Stats(); from.Packets != 2 {
		t.Fatalf("counted %d packets", from.Packets)
	}
}

// linkPort is an operator's media that reports its WebRTC transport.
type linkPort struct {
	*port
	mu   sync.Mutex
	link sb.LinkInfo
}

func (p *linkPort) Link() sb.LinkInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.link
}

func (p *linkPort) set(l sb.LinkInfo) {
	p.mu.Lock()
	p.link = l
	p.mu.Unlock()
}

type linkOperator struct {
	*operator
	lp *linkPort
}

func (o *linkOperator) Media() sb.MediaPort { return o.lp }

// ended is a CallObserver that hands over each final record.
type ended chan *sb.Call

func (e ended) CallEvent(*sb.CallEvent) {}
func (e ended) CallEnded(c *sb.Call)    { e <- c }

// When the operator's browser loses its connection mid-call, the record
// says the browser leg failed during media and tags the ICE failure; the
// scorer sees the call's samples; the observer sees the end.
func TestBrowserLegFailureIsTagged(t *testing.T) {
	var scored []sb.QualitySample
	scorer := func(c *sb.Call, samples []sb.QualitySample) (float64, float64, []string) {
		scored = samples
		return 4.1, 3.2, []string{sb.TagLowMOS}
	}
	observed := make(ended, 1)
	sw, rec := newSwitch(t, callctl.WithQuality(scorer), callctl.WithQualitySampling(20*time.Millisecond), callctl.WithObserver(observed))
	op := &linkOperator{operator: newOperator(tenantA), lp: &linkPort{port: &port{codec: sb.PCMU}}}
	op.lp.set(sb.LinkInfo{ICE: "connected", DTLS: "connected", Pair: "host udp 127.0.0.1:1 ↔ host udp 127.0.0.1:2"})
	if err := sw.Available(op); err != nil {
		t.Fatal(err)
	}
	op.next(t) // available
	l := newLeg(sb.PCMU)
	sw.DispatchInbound(inbound(l))
	id := op.nextOffer(t)
	if err := sw.Accept(op.id, id); err != nil {
		t.Fatal(err)
	}
	op.next(t) // connected
	op.lp.set(sb.LinkInfo{ICE: "disconnected", DTLS: "connected"})
	time.Sleep(300 * time.Millisecond) // several samples, even on a loaded machine
	sw.Disconnected(op.id)
	c := rec.waitEnded(t)
	if c.FailureLeg != sb.FailedOnBrowser || c.FailureStage != sb.StageMedia || c.Q850Cause != 16 {
		t.Errorf("record: failed on %q at %q, cause %d", c.FailureLeg, c.FailureStage, c.Q850Cause)
	}
	if !slices.Equal(c.Tags, []string{sb.TagLowMOS, sb.TagICEFailure}) || c.FromCaller.MOS != 4.1 || c.ToCaller.MOS != 3.2 {
		t.Errorf("record: tags %v, MOS %v / %v", c.Tags, c.FromCaller.MOS, c.ToCaller.MOS)
	}
	legs := map[string]int{}
	for _, s := range scored {
		legs[s.Leg+"/"+s.Source]++
	}
	if legs["trunk/switchboard"] < 2 || legs["browser/switchboard"] < 2 {
		t.Errorf("the scorer saw samples %v", legs)
	}
	if got := rec.eventsOf(c.ID); !slices.Contains(got, sb.EventWebRTC) {
		t.Errorf("events %v lack the WebRTC change", got)
	}
	select {
	case o := <-observed:
		if o.ID != c.ID {
			t.Errorf("observer saw call %s", o.ID)
		}
	case <-time.After(time.Second):
		t.Error("the observer did not see the end")
	}
}

// A key the caller sent in a SIP INFO is on the timeline like an RFC 4733
// one.
func TestInfoDTMFOnTheTimeline(t *testing.T) {
	sw, rec := newSwitch(t)
	op := newOperator(tenantA)
	goAvailable(t, sw, op)
	l := newLeg(sb.PCMU)
	sw.DispatchInbound(inbound(l))
	if err := sw.Accept(op.id, op.nextOffer(t)); err != nil {
		t.Fatal(err)
	}
	op.next(t) // connected
	l.events <- sb.LegEvent{Kind: sb.LegDTMF, Reason: "7"}
	l.events <- sb.LegEvent{Kind: sb.LegHungUp}
	c := rec.waitEnded(t)
	if got := rec.eventsOf(c.ID); !slices.Contains(got, sb.EventDTMF) {
		t.Errorf("events %v lack the key", got)
	}
}

// Keys pressed while the recording is paused are a card number or a PIN:
// the timeline (and so the webhooks, which hear the same events) keeps
// them masked, whether they came in RFC 4733 or a SIP INFO; before the
// pause and after the resume they are kept as pressed.
func TestDTMFMaskedWhilePaused(t *testing.T) {
	seen := &detailObserver{}
	sw, _ := newSwitch(t, callctl.WithObserver(seen))
	l := newLeg(sb.Codec{Name: "PCMU", ClockRate: 8000, DTMFType: 101})
	_, callID := connectedCall(t, sw, l)
	press := func(d byte, ts uint32) {
		l.media.deliver(append(media.AppendHeader(nil, false, 101, uint16(ts), ts, 0x1111), d, 0x80|10, 0x03, 0x20))
	}
	waitDigits := func(want ...string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(2 * time.Millisecond) {
			got := seen.digits(callID)
			if slices.Equal(got, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("digits on the timeline %q, want %q", got, want)
			}
		}
	}
	pause := func(paused bool) {
		t.Helper()
		if err := sw.PauseRecording(tenantA, callID, paused, "user 42"); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(5 * time.Second); seen.pausedNow(callID) != paused; time.Sleep(2 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the pause (%v) did not take effect", paused)
			}
		}
	}
	press(1, 160)
	waitDigits("1")
	pause(true)
	press(4, 320)
	waitDigits("1", "*")
	l.events <- sb.LegEvent{Kind: sb.LegDTMF, Reason: "2"}
	waitDigits("1", "*", "*")
	pause(false)
	press(9, 480)
	waitDigits("1", "*", "*", "9")
	l.events <- sb.LegEvent{Kind: sb.LegHungUp}
	if by := seen.pausedBy(callID); by != "user 42" {
		t.Errorf("the pause on the timeline is by %q, want who asked", by)
	}
}

// detailObserver keeps the digits of each call's DTMF events, and whether
// its recording is paused.
type detailObserver struct {
	mu     sync.Mutex
	keys   map[sb.ID][]string
	paused map[sb.ID]bool
	by     map[sb.ID]string // who last paused or resumed
}

func (o *detailObserver) pausedBy(callID sb.ID) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.by[callID]
}

func (o *detailObserver) CallEvent(e *sb.CallEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.keys == nil {
		o.keys, o.paused, o.by = map[sb.ID][]string{}, map[sb.ID]bool{}, map[sb.ID]string{}
	}
	switch e.Type {
	case sb.EventDTMF:
		o.keys[e.CallID] = append(o.keys[e.CallID], e.Detail["digit"].(string))
	case sb.EventRecordingPaused, sb.EventRecordingResumed:
		o.paused[e.CallID] = e.Type == sb.EventRecordingPaused
		o.by[e.CallID], _ = e.Detail["by"].(string)
	}
}

func (o *detailObserver) pausedNow(id sb.ID) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.paused[id]
}

func (o *detailObserver) CallEnded(*sb.Call) {}

func (o *detailObserver) digits(id sb.ID) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.keys[id])
}

// A forwarded call whose placed leg's session refresh never comes: that
// leg gets a BYE, so does the caller, and the record says why.
func TestForwardedLegSessionExpired(t *testing.T) {
	night := queue("night", 100*time.Millisecond)
	night.Overflow = sb.Overflow{Kind: sb.OverflowURI, URI: "sip:voicemail@127.0.0.1:5080"}
	out := &outLeg{media: &port{codec: sb.PCMU}, events: make(chan sb.LegEvent, 4)}
	d := &dialer{leg: out, routes: make(chan sb.OutboundRoute, 1), users: make(chan string, 1)}
	sw, rec := newSwitch(t, callctl.WithQueues(newQueues(night)), callctl.WithDialer(d, nil))
	l := call(sw, night, "caller")
	<-d.routes
	waitActions(t, l, "ring")
	out.events <- sb.LegEvent{Kind: sb.LegAnswered}
	waitActions(t, l, "ring", "answer")
	out.events <- sb.LegEvent{Kind: sb.LegSessionExpired, Reason: "no session refresh within 1m30s (RFC 4028)"}
	c := rec.waitEnded(t)
	if c.Status != sb.CallFailed || c.HangupBy != sb.PartySystem || !strings.Contains(c.Reason, "session expired on the forwarded leg") {
		t.Errorf("record %q by %q: %q", c.Status, c.HangupBy, c.Reason)
	}
	out.mu.Lock()
	hungUp := out.hungUp
	out.mu.Unlock()
	if !hungUp {
		t.Error("the forwarded leg got no BYE")
	}
	if got := l.did(); len(got) != 3 || got[2] != "bye session expired" {
		t.Errorf("caller's leg: %q", got)
	}
	if !slices.Contains(rec.eventsOf(c.ID), sb.EventSessionExpired) {
		t.Errorf("events %v", rec.eventsOf(c.ID))
	}
}

// writeCounter counts the writes each call's record takes: a database's
// round trips and transactions.
type writeCounter struct {
	sb.CallRecorder
	mu     sync.Mutex
	writes map[sb.ID]int
}

func (w *writeCounter) add(id sb.ID) {
	w.mu.Lock()
	w.writes[id]++
	w.mu.Unlock()
}

func (w *writeCounter) CreateCall(ctx context.Context, c *sb.Call) error {
	w.add(c.ID)
	return w.CallRecorder.CreateCall(ctx, c)
}

func (w *writeCounter) UpdateCall(ctx context.Context, c *sb.Call) error {
	w.add(c.ID)
	return w.CallRecorder.UpdateCall(ctx, c)
}

func (w *writeCounter) AddCallEvents(ctx context.Context, events ...*sb.CallEvent) error {
	w.add(events[0].CallID)
	return w.CallRecorder.AddCallEvents(ctx, events...)
}

func (w *writeCounter) AddCallTrace(ctx context.Context, t *sb.CallTrace) error {
	w.add(t.CallID)
	return w.CallRecorder.AddCallTrace(ctx, t)
}

func (w *writeCounter) WriteCallStep(ctx context.Context, s *sb.CallStep) error {
	switch {
	case s.Call != nil:
		w.add(s.Call.ID)
	case s.Trace != nil:
		w.add(s.Trace.CallID)
	default:
		w.add(s.Events[0].CallID)
	}
	return w.CallRecorder.WriteCallStep(ctx, s)
}

// A call's record is written once at each of its moments, each write
// with what came with it: created, answered (state and timeline), ended
// (timeline, trace, state). Each write is a transaction of the database's,
// which under load costs more than what it writes.
func TestCallRecordWrittenOncePerMoment(t *testing.T) {
	rec := newRecorder()
	counter := &writeCounter{CallRecorder: rec, writes: map[sb.ID]int{}}
	sw := callctl.NewSwitch(counter, callctl.WithRingTimeout(2*time.Second))
	t.Cleanup(func() { sw.Close() })
	l := newLeg(sb.PCMU)
	op, callID := connectedCall(t, sw, l)
	if err := sw.Hangup(op.id, callID); err != nil {
		t.Fatal(err)
	}
	c := rec.waitEnded(t)
	counter.mu.Lock()
	n := counter.writes[c.ID]
	counter.mu.Unlock()
	if n != 3 {
		t.Errorf("the call's record took %d writes, want 3: created, answered, ended", n)
	}
	rec.mu.Lock()
	stored := rec.storedAtEnd[c.ID]
	rec.mu.Unlock()
	if want := rec.eventsOf(c.ID); !slices.Equal(stored.events, want) {
		t.Errorf("when the final record was written: events %v, want all of %v", stored.events, want)
	}
}
