package callctl_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/callctl"
	"github.com/switchboard-voice/switchboard/media"
)

// Every phase × every event: the table of docs/ARCHITECTURE.md ("What a
// call does in each phase"), walked cell by cell. Each cell brings a call
// into one phase, makes one thing happen, and checks what the call did:
// its record (status, who ended it, why), its timeline, its recording
// (absent, destroyed, complete, a gap where it was paused), and the
// operators' states afterwards. Calls that go on after the event are then
// moved on to where an operator would take them and ended by the caller,
// so that what an event left for the next phase is checked too.

// phaseCase brings a call into one phase.
type phaseCase struct {
	name string
	// answered: the call's own leg is answered in this phase.
	answered bool
	// recorded: with consent, the call is recorded once it moves on
	// (next), because it then reaches the tenant's operators.
	recorded bool
	// placed: a call an operator placed; its own leg is the one dialled.
	placed bool
	// busy: the phase's operator is on the call (not only rung for it).
	busy bool
	// kept: with consent from the start, the call has a recording by this
	// phase (running, or stored when the call left the tenant's operators).
	kept bool
	// operator is who the phase's operator-drop cell drops; nil: no
	// operator of this instance is on or ringing for the call.
	operator func(h *phaseHarness) *operator
	enter    func(t *testing.T, h *phaseHarness)
	// next moves the call on to where an operator (or the party it was
	// sent to) talks to the caller; nil when it is there already.
	next func(t *testing.T, h *phaseHarness)
}

// phaseHarness is one cell's switch and parties.
type phaseHarness struct {
	sw       *callctl.Switch
	rec      *recorder
	recs     *fakeRecordings
	d        *legDialer
	seen     *observer
	caller   *leg
	op1, op2 *operator
	callID   sb.ID
	out      *outLeg // the leg placed (forward, transfer, hand-over, or the operator's own call)
	consent  bool    // the call starts with recording consent
	q1, q2   *sb.Queue
}

// callerLeg is the leg whose far end is "the caller": the trunk's, or on
// a call we placed, the dialled party's.
func (h *phaseHarness) callerMedia() *port {
	if h.out != nil && h.caller == nil {
		return h.out.media
	}
	return h.caller.media
}

func (h *phaseHarness) callerEvents() chan sb.LegEvent {
	if h.caller == nil {
		return h.out.events
	}
	return h.caller.events
}

// allPhases is the table's rows.
func allPhases() []phaseCase {
	return []phaseCase{
		{name: "ringing", recorded: true, operator: func(h *phaseHarness) *operator { return h.op1 },
			enter: func(t *testing.T, h *phaseHarness) {
				goAvailable(t, h.sw, h.op1)
				h.dispatch(t, "+15557654321")
				h.callID = h.op1.nextOffer(t)
			},
			next: func(t *testing.T, h *phaseHarness) { h.accept(t, h.op1) }},
		{name: "queued", recorded: true,
			enter: func(t *testing.T, h *phaseHarness) {
				h.dispatch(t, h.q1.Numbers[0])
				waitFor(t, "the call waits in line", func() bool { return h.sw.Waiting(tenantA)[h.q1.ID] == 1 })
				h.callID = h.rec.callFrom(t, "+15551230000").ID
			},
			next: func(t *testing.T, h *phaseHarness) {
				goAvailable(t, h.sw, h.op1)
				h.op1.nextOffer(t)
				h.accept(t, h.op1)
			}},
		{name: "talking", busy: true, answered: true, kept: true, recorded: true, operator: func(h *phaseHarness) *operator { return h.op1 },
			enter: func(t *testing.T, h *phaseHarness) { h.talking(t) }},
		{name: "held", busy: true, answered: true, kept: true, recorded: true, operator: func(h *phaseHarness) *operator { return h.op1 },
			enter: func(t *testing.T, h *phaseHarness) {
				h.talking(t)
				if err := h.sw.Hold(h.op1.id, h.callID, true); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "the caller held", func() bool { return slices.Contains(h.caller.did(), "hold") })
				h.waitEvent(t, sb.EventHeld)
			},
			next: func(t *testing.T, h *phaseHarness) {
				if err := h.sw.Hold(h.op1.id, h.callID, false); err != nil {
					t.Fatal(err)
				}
				h.waitEvent(t, sb.EventResumed)
			}},
		{name: "transfer ringing an operator", answered: true, kept: true, recorded: true, operator: func(h *phaseHarness) *operator { return h.op2 },
			enter: func(t *testing.T, h *phaseHarness) {
				h.talking(t)
				goAvailable(t, h.sw, h.op2)
				if err := h.sw.Transfer(h.op1.id, h.callID, h.op2.id); err != nil {
					t.Fatal(err)
				}
				h.op2.nextOffer(t)
			},
			next: func(t *testing.T, h *phaseHarness) { h.accept(t, h.op2) }},
		{name: "transfer waiting in a queue", answered: true, kept: true, recorded: true,
			enter: func(t *testing.T, h *phaseHarness) {
				h.talking(t)
				if err := h.sw.TransferCall(h.op1.id, h.callID, sb.TransferTarget{QueueID: &h.q2.ID}); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "the call waits in line", func() bool { return h.sw.Waiting(tenantA)[h.q2.ID] == 1 })
			},
			next: func(t *testing.T, h *phaseHarness) {
				goAvailable(t, h.sw, h.op2)
				h.op2.nextOffer(t)
				h.accept(t, h.op2)
			}},
		{name: "transfer ringing a SIP URI", answered: true, kept: true,
			enter: func(t *testing.T, h *phaseHarness) {
				h.talking(t)
				if err := h.sw.TransferCall(h.op1.id, h.callID, sb.TransferTarget{URI: "sip:desk@127.0.0.1:5099"}); err != nil {
					t.Fatal(err)
				}
				h.out = h.d.next(t)
			},
			next: func(t *testing.T, h *phaseHarness) {
				h.out.events <- sb.LegEvent{Kind: sb.LegAnswered}
				h.waitEventCount(t, sb.EventAnswered, 2)
			}},
		{name: "transferred to a SIP URI", answered: true, kept: true,
			enter: func(t *testing.T, h *phaseHarness) {
				phaseNamed("transfer ringing a SIP URI").enter(t, h)
				phaseNamed("transfer ringing a SIP URI").next(t, h)
			}},
		{name: "forward ringing", operator: nil,
			enter: func(t *testing.T, h *phaseHarness) {
				h.dispatch(t, h.q1.Numbers[0]+"9")
				h.out = h.d.next(t)
				h.callID = h.rec.callFrom(t, "+15551230000").ID
			},
			next: func(t *testing.T, h *phaseHarness) {
				h.out.events <- sb.LegEvent{Kind: sb.LegAnswered}
				waitFor(t, "the caller answered", func() bool { return slices.Contains(h.caller.did(), "answer") })
				h.waitEvent(t, sb.EventAnswered)
			}},
		{name: "forwarded", answered: true,
			enter: func(t *testing.T, h *phaseHarness) {
				phaseNamed("forward ringing").enter(t, h)
				phaseNamed("forward ringing").next(t, h)
			}},
		{name: "placed, early media", busy: true, placed: true, recorded: true, operator: func(h *phaseHarness) *operator { return h.op1 },
			enter: func(t *testing.T, h *phaseHarness) {
				goAvailable(t, h.sw, h.op1)
				id, err := h.sw.Dial(h.op1.id, "+15550001111")
				if err != nil {
					t.Fatal(err)
				}
				h.callID, h.caller = id, nil
				if h.consent {
					h.setConsent(t, true)
				}
				h.out = h.d.next(t)
				h.out.events <- sb.LegEvent{Kind: sb.LegRinging}
				h.out.events <- sb.LegEvent{Kind: sb.LegEarlyMedia}
				if n := h.op1.next(t); n != "connected" {
					t.Fatalf("operator told %q, want connected (early media)", n)
				}
			},
			next: func(t *testing.T, h *phaseHarness) {
				h.out.events <- sb.LegEvent{Kind: sb.LegAnswered}
				h.waitEvent(t, sb.EventAnswered)
			}},
		{name: "placed, answered", busy: true, answered: true, kept: true, placed: true, recorded: true, operator: func(h *phaseHarness) *operator { return h.op1 },
			enter: func(t *testing.T, h *phaseHarness) {
				phaseNamed("placed, early media").enter(t, h)
				phaseNamed("placed, early media").next(t, h)
			}},
		{name: "handing over to another instance", recorded: true,
			enter: func(t *testing.T, h *phaseHarness) {
				h.dispatch(t, "+15557654321")
				h.out = h.d.next(t)
				h.callID = h.rec.callFrom(t, "+15551230000").ID
			},
			next: func(t *testing.T, h *phaseHarness) {
				h.out.events <- sb.LegEvent{Kind: sb.LegAnswered}
				waitFor(t, "the caller answered", func() bool { return slices.Contains(h.caller.did(), "answer") })
				h.waitEvent(t, sb.EventAnswered)
			}},
		{name: "talking across instances", answered: true, kept: true, recorded: true,
			enter: func(t *testing.T, h *phaseHarness) {
				phaseNamed("handing over to another instance").enter(t, h)
				phaseNamed("handing over to another instance").next(t, h)
			}},
	}
}

func phaseNamed(name string) phaseCase {
	for _, p := range allPhases() {
		if p.name == name {
			return p
		}
	}
	panic("no phase " + name)
}

// across reports whether the phase needs another instance.
func (p phaseCase) across() bool {
	return p.name == "handing over to another instance" || p.name == "talking across instances"
}

func newPhaseHarness(t *testing.T, p phaseCase, consent bool, extra ...callctl.SwitchOption) *phaseHarness {
	t.Helper()
	h := &phaseHarness{rec: newRecorder(), recs: &fakeRecordings{}, d: &legDialer{legs: make(chan *outLeg, 4)}, seen: &observer{},
		op1: newOperator(tenantA), op2: newOperator(tenantA), consent: consent}
	// q1 takes op1's calls and waits; its number plus 9 leads to a queue
	// nobody is in that forwards at once. q2 is op2's.
	h.q1 = queue("sales", 10*time.Second, h.op1.id)
	h.q2 = queue("payments", 10*time.Second, h.op2.id)
	fwd := queue("night", 0, sb.NewID())
	fwd.Numbers = []string{h.q1.Numbers[0] + "9"}
	fwd.Overflow = sb.Overflow{Kind: sb.OverflowURI, URI: "sip:voicemail@127.0.0.1:5098"}
	opts := []callctl.SwitchOption{callctl.WithRingTimeout(5 * time.Second), callctl.WithRecordings(h.recs), callctl.WithQueues(newQueues(h.q1, h.q2, fwd)),
		callctl.WithDialer(h.d, routes{}), callctl.WithObserver(h.seen)}
	if p.across() {
		opts = append(opts, callctl.WithCluster(&oneRemote{}, "a", []byte("secret")))
	}
	h.sw = callctl.NewSwitch(h.rec, append(opts, extra...)...)
	t.Cleanup(func() { h.sw.Close() })
	return h
}

// dispatch places an inbound call to number.
func (h *phaseHarness) dispatch(t *testing.T, number string) {
	t.Helper()
	h.caller = newLeg(sb.Codec{Name: "PCMU", ClockRate: 8000, DTMFType: 101})
	in := inbound(h.caller)
	in.To = number
	if h.consent {
		in.Consent = &sb.Consent{Given: true, Mechanism: sb.ConsentSIPHeader, At: time.Now(), By: "pbx"}
	}
	h.sw.DispatchInbound(in)
}

// talking brings an inbound call to op1, who answers.
func (h *phaseHarness) talking(t *testing.T) {
	t.Helper()
	goAvailable(t, h.sw, h.op1)
	h.dispatch(t, "+15557654321")
	h.callID = h.op1.nextOffer(t)
	h.accept(t, h.op1)
}

func (h *phaseHarness) accept(t *testing.T, op *operator) {
	t.Helper()
	if err := h.sw.Accept(op.id, h.callID); err != nil {
		t.Fatal(err)
	}
	for {
		if n := op.next(t); n == "connected" {
			return
		}
	}
}

func (h *phaseHarness) setConsent(t *testing.T, given bool) {
	t.Helper()
	if err := h.sw.SetConsent(tenantA, h.callID, sb.Consent{Given: given, Mechanism: sb.ConsentAPI, At: time.Now(), By: "crm"}); err != nil {
		t.Fatal(err)
	}
}

func (h *phaseHarness) waitEvent(t *testing.T, e sb.EventType) { t.Helper(); h.waitEventCount(t, e, 1) }

func (h *phaseHarness) waitEventCount(t *testing.T, e sb.EventType, n int) {
	t.Helper()
	waitFor(t, string(e)+" on the timeline", func() bool { return h.seen.count(h.callID, e) >= n })
}

// observer counts each call's events as call control makes them.
type observer struct {
	mu     sync.Mutex
	events map[sb.ID][]sb.EventType
}

func (o *observer) CallEvent(e *sb.CallEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.events == nil {
		o.events = map[sb.ID][]sb.EventType{}
	}
	o.events[e.CallID] = append(o.events[e.CallID], e.Type)
}

func (o *observer) CallEnded(*sb.Call) {}

func (o *observer) count(id sb.ID, e sb.EventType) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, got := range o.events[id] {
		if got == e {
			n++
		}
	}
	return n
}

// carryOn moves the call on from phase p to where it is talked to (and,
// with waitRecording, waits for the recording that starts there), has the
// caller say n frames and hang up, and checks the call ended completed by
// the caller.
func (h *phaseHarness) carryOn(t *testing.T, p phaseCase, waitRecording bool, n int) {
	t.Helper()
	if p.next != nil {
		p.next(t, h)
	}
	if waitRecording {
		h.recordingStarted(t, p)
	}
	h.talk(n)
	h.hangUp()
	checkRecord(t, h.finalRecord(t), want{status: sb.CallCompleted, by: sb.PartyCaller})
}

// recordingStarted waits, where the phase records, for the recording to
// have started: it starts just after the two sides hear each other.
func (h *phaseHarness) recordingStarted(t *testing.T, p phaseCase) {
	t.Helper()
	if p.recorded {
		h.waitEvent(t, sb.EventRecordingStarted)
	}
}

// talk has the caller send n audio frames.
func (h *phaseHarness) talk(n int) {
	m := h.callerMedia()
	for i := 0; i < n; i++ {
		m.deliver(append(media.AppendHeader(nil, false, 0, uint16(i), uint32(i)*160, 0x1111), make([]byte, 160)...))
	}
}

// key has the caller press 7 (RFC 4733, its end packet).
func (h *phaseHarness) key() {
	h.callerMedia().deliver(append(media.AppendHeader(nil, false, 101, 900, 90000, 0x1111), 7, 0x80|10, 0x03, 0x20))
}

// hangUp ends the call from the caller's side.
func (h *phaseHarness) hangUp() { h.callerEvents() <- sb.LegEvent{Kind: sb.LegHungUp} }

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// want is what a cell expects of the call's record; an empty reason is
// not checked.
type want struct {
	status sb.CallStatus
	by     sb.Party
	reason string
}

func checkRecord(t *testing.T, c sb.Call, w want) {
	t.Helper()
	if c.Status != w.status || c.HangupBy != w.by || (w.reason != "" && c.Reason != w.reason) {
		t.Errorf("record: %s by %s (%q); want %s by %s (%q)", c.Status, c.HangupBy, c.Reason, w.status, w.by, w.reason)
	}
}

// finalRecord waits for the call's final record.
func (h *phaseHarness) finalRecord(t *testing.T) sb.Call {
	t.Helper()
	for {
		c := h.rec.waitEnded(t)
		if c.ID == h.callID {
			return c
		}
	}
}

// operatorsFree checks that no operator is left ringing or busy.
func (h *phaseHarness) operatorsFree(t *testing.T) {
	t.Helper()
	waitFor(t, "every operator free of the call", func() bool {
		n := h.sw.OperatorStates()
		return n["ringing"] == 0 && n["busy"] == 0
	})
}

// endedFor is how a call ends when the caller leaves in phase p.
func endedByCaller(p phaseCase) want {
	switch {
	case p.answered:
		return want{status: sb.CallCompleted, by: sb.PartyCaller}
	case p.placed:
		return want{status: sb.CallRejected, by: sb.PartyCaller}
	}
	return want{status: sb.CallCanceled, by: sb.PartyCaller}
}

func TestEveryPhaseEveryEvent(t *testing.T) {
	for _, p := range allPhases() {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			t.Run("caller leaves", func(t *testing.T) {
				t.Parallel()
				h := newPhaseHarness(t, p, true)
				p.enter(t, h)
				if p.placed && !p.answered {
					h.out.events <- sb.LegEvent{Kind: sb.LegFailed, Code: 603, Reason: "Decline"}
				} else if p.answered {
					h.hangUp()
				} else {
					h.callerEvents() <- sb.LegEvent{Kind: sb.LegCanceled}
				}
				c := h.finalRecord(t)
				checkRecord(t, c, endedByCaller(p))
				h.operatorsFree(t)
				if !p.answered && !p.placed && c.SIPCode != 487 {
					t.Errorf("a caller who cancels gets 487; the record says %d", c.SIPCode)
				}
				h.recs.check(t, recordingsWant{complete: p.kept})
				if h.out != nil && !p.placed && !h.out.hungUpNow() {
					t.Error("the leg placed for the caller was not hung up")
				}
			})
			t.Run("ended through the API", func(t *testing.T) {
				t.Parallel()
				h := newPhaseHarness(t, p, true)
				p.enter(t, h)
				if err := h.sw.EndCall(tenantA, h.callID); err != nil {
					t.Fatal(err)
				}
				c := h.finalRecord(t)
				switch {
				case p.answered:
					checkRecord(t, c, want{status: sb.CallCompleted, by: sb.PartySystem, reason: "ended through the API"})
					if !p.placed && !slices.Contains(h.caller.did(), "bye ended through the API") {
						t.Errorf("caller's leg: %q, want a BYE", h.caller.did())
					}
				case p.placed:
					checkRecord(t, c, want{status: sb.CallCanceled, by: sb.PartySystem, reason: "ended through the API"})
					if !h.out.hungUpNow() {
						t.Error("the call we placed was not canceled")
					}
				default:
					checkRecord(t, c, want{status: sb.CallCanceled, by: sb.PartySystem, reason: "ended through the API"})
					if c.SIPCode != 480 {
						t.Errorf("refused with %d, want 480", c.SIPCode)
					}
				}
				h.operatorsFree(t)
				h.recs.check(t, recordingsWant{complete: p.kept})
			})
			t.Run("consent given", func(t *testing.T) {
				t.Parallel()
				h := newPhaseHarness(t, p, false)
				p.enter(t, h)
				h.setConsent(t, true)
				h.waitEventCount(t, sb.EventConsent, 1)
				h.carryOn(t, p, true, 5)
				h.recs.check(t, recordingsWant{complete: p.recorded, fromCaller: boolInt(p.recorded) * 5})
				h.operatorsFree(t)
			})
			t.Run("consent withdrawn", func(t *testing.T) {
				t.Parallel()
				h := newPhaseHarness(t, p, true)
				p.enter(t, h)
				consents := h.seen.count(h.callID, sb.EventConsent)
				h.setConsent(t, false)
				// At once, in this phase: nothing of the call is kept.
				h.waitEventCount(t, sb.EventConsent, consents+1)
				waitFor(t, "every recording destroyed", func() bool { return h.recs.none(recActive, recComplete) })
				h.carryOn(t, p, false, 5)
				h.recs.check(t, recordingsWant{})
				if h.recs.tapsAfterEnd() > 0 {
					t.Error("audio reached a destroyed recording")
				}
				h.operatorsFree(t)
			})
			t.Run("paused", func(t *testing.T) {
				t.Parallel()
				h := newPhaseHarness(t, p, true)
				p.enter(t, h)
				if err := h.sw.PauseRecording(tenantA, h.callID, true, ""); err != nil {
					t.Fatal(err)
				}
				h.waitEvent(t, sb.EventRecordingPaused)
				if p.next != nil {
					p.next(t, h)
				}
				h.recordingStarted(t, p)
				h.talk(5) // the card number: never recorded
				if err := h.sw.PauseRecording(tenantA, h.callID, false, ""); err != nil {
					t.Fatal(err)
				}
				h.waitEvent(t, sb.EventRecordingResumed)
				h.talk(3)
				h.hangUp()
				c := h.finalRecord(t)
				checkRecord(t, c, want{status: sb.CallCompleted, by: sb.PartyCaller})
				h.recs.check(t, recordingsWant{complete: p.kept || p.recorded, fromCaller: boolInt(p.recorded) * 3, gap: p.recorded})
				h.operatorsFree(t)
			})
			t.Run("resumed", func(t *testing.T) {
				t.Parallel()
				h := newPhaseHarness(t, p, true)
				p.enter(t, h)
				for _, paused := range []bool{true, false} {
					if err := h.sw.PauseRecording(tenantA, h.callID, paused, ""); err != nil {
						t.Fatal(err)
					}
				}
				h.waitEvent(t, sb.EventRecordingResumed)
				h.carryOn(t, p, true, 4)
				h.recs.check(t, recordingsWant{complete: p.kept || p.recorded, fromCaller: boolInt(p.recorded) * 4})
				h.operatorsFree(t)
			})
			t.Run("operator's page drops", func(t *testing.T) {
				if p.operator == nil {
					t.Skip("no operator of this instance rings for or talks on a call in this phase: " +
						"the operator who transferred it is free, and one on another instance leaves by that instance's BYE")
				}
				t.Parallel()
				h := newPhaseHarness(t, p, true)
				p.enter(t, h)
				op := p.operator(h)
				h.sw.Disconnected(op.id)
				c := h.finalRecord(t)
				switch {
				case p.placed && !p.answered:
					checkRecord(t, c, want{status: sb.CallCanceled, by: sb.PartyOperator})
				case p.answered && op == h.op1:
					checkRecord(t, c, want{status: sb.CallCompleted, by: sb.PartyOperator, reason: "operator disconnected"})
				case p.answered: // the transfer's operator went: nobody else here
					checkRecord(t, c, want{status: sb.CallCompleted, by: sb.PartySystem, reason: "the transfer was not answered"})
				default: // nobody else to ring
					checkRecord(t, c, want{status: sb.CallNoAnswer, by: sb.PartySystem, reason: "no operator answered"})
				}
				h.operatorsFree(t)
				h.recs.check(t, recordingsWant{complete: p.kept})
				for _, n := range op.drain() {
					if n == "offer" {
						t.Error("the operator who went was offered the call again")
					}
				}
			})
			t.Run("operator's page drops, the caller leaves in the grace", func(t *testing.T) {
				h := pageDrops(t, p)
				if p.placed && !p.answered {
					// Nobody would hear the answer: the call is canceled at once.
					checkRecord(t, h.finalRecord(t), want{status: sb.CallCanceled, by: sb.PartyOperator})
				} else {
					h.waitEvent(t, sb.EventOperatorLost)
					h.hangUp()
					checkRecord(t, h.finalRecord(t), endedByCaller(p))
				}
				// The page that went is not offered the next call.
				waitFor(t, "the dropped page forgotten", func() bool {
					n := h.sw.OperatorStates()
					return n["available"]+n["busy"]+n["ringing"]+n["away"] == 0
				})
			})
			t.Run("operator's page drops and comes back", func(t *testing.T) {
				h := pageDrops(t, p)
				back := &operator{id: h.op1.id, tenant: tenantA, media: &port{codec: h.op1.media.codec}, notes: make(chan string, 64)}
				if p.placed && !p.answered {
					checkRecord(t, h.finalRecord(t), want{status: sb.CallCanceled, by: sb.PartyOperator})
					if h.sw.Reattach(back, func(sb.CallOffer) {}) {
						t.Error("a canceled call was given back to the page")
					}
					return
				}
				h.waitEvent(t, sb.EventOperatorLost)
				if !h.sw.Reattach(back, func(sb.CallOffer) {}) {
					t.Fatal("the call was not given back to the page")
				}
				h.waitEvent(t, sb.EventOperatorBack)
				if p.next != nil {
					p.next(t, h) // off hold
				}
				h.talk(3)
				if got := len(back.media.packets()); got != 3 {
					t.Errorf("the page that came back heard %d of 3 frames", got)
				}
				h.hangUp()
				checkRecord(t, h.finalRecord(t), endedByCaller(p))
				h.recs.check(t, recordingsWant{complete: true})
				waitFor(t, "the page that came back free", func() bool {
					n := h.sw.OperatorStates()
					return n["available"] == 1 && n["busy"] == 0
				})
				var told []string
				for len(told) == 0 || told[len(told)-1] != "ended caller hung up" {
					told = append(told, back.next(t))
				}
				if told[0] != "connected" || told[len(told)-2] != "available" {
					t.Errorf("the page that came back was told %q: connected first, then available before ended", told)
				}
			})
			t.Run("service stops", func(t *testing.T) {
				t.Parallel()
				h := newPhaseHarness(t, p, true)
				p.enter(t, h)
				h.sw.Close()
				c := h.finalRecord(t)
				switch {
				case p.answered:
					checkRecord(t, c, want{status: sb.CallCompleted, by: sb.PartySystem, reason: "service shutting down"})
				case p.placed:
					checkRecord(t, c, want{status: sb.CallFailed, by: sb.PartySystem, reason: "service shutting down"})
				default:
					checkRecord(t, c, want{status: sb.CallFailed, by: sb.PartySystem, reason: "service shutting down"})
					if c.SIPCode != 503 {
						t.Errorf("refused with %d, want 503", c.SIPCode)
					}
				}
				if c.FailureLeg != sb.FailedOnService {
					t.Errorf("failed on %q, want the service", c.FailureLeg)
				}
				h.recs.check(t, recordingsWant{complete: p.kept})
			})
			t.Run("DTMF", func(t *testing.T) {
				t.Parallel()
				h := newPhaseHarness(t, p, false)
				p.enter(t, h)
				// A key by SIP INFO in every phase; an RFC 4733 one where
				// the caller's audio flows: not before the answer (no media
				// yet) and not on hold (the caller is recvonly).
				h.callerEvents() <- sb.LegEvent{Kind: sb.LegDTMF, Reason: "4"}
				h.waitEvent(t, sb.EventDTMF)
				bridged := p.answered && p.name != "held" || p.placed
				if bridged {
					h.key()
					h.waitEventCount(t, sb.EventDTMF, 2)
				}
				h.hangUp()
				c := h.finalRecord(t)
				if !c.Status.Ended() {
					t.Errorf("record %s", c.Status)
				}
				n := 0
				for _, e := range h.rec.eventsOf(h.callID) {
					if e == sb.EventDTMF {
						n++
					}
				}
				if want := 1 + boolInt(bridged); n != want {
					t.Errorf("%d dtmf events on the timeline, want %d", n, want)
				}
			})
		})
	}
}

// pageDrops brings a call into phase p with a reconnect grace, and drops
// the page of the operator on it.
func pageDrops(t *testing.T, p phaseCase) *phaseHarness {
	t.Helper()
	if !p.busy {
		t.Skip("no operator of this instance is on the call: nobody's page can wait to come back")
	}
	t.Parallel()
	h := newPhaseHarness(t, p, true, callctl.WithReconnectGrace(time.Minute))
	p.enter(t, h)
	h.sw.Disconnected(h.op1.id)
	return h
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// drain returns the notifications the operator has not read.
func (o *operator) drain() []string {
	var out []string
	for {
		select {
		case n := <-o.notes:
			if len(n) > 6 && n[:6] == "offer " {
				n = "offer"
			}
			out = append(out, n)
		default:
			return out
		}
	}
}

func (o *outLeg) hungUpNow() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.hungUp
}

// legDialer hands out a new outLeg for each call placed.
type legDialer struct{ legs chan *outLeg }

func (d *legDialer) Dial(context.Context, sb.OutboundRoute, string) (sb.OutboundLeg, error) {
	l := &outLeg{media: &port{codec: sb.Codec{Name: "PCMU", ClockRate: 8000, DTMFType: 101}}, events: make(chan sb.LegEvent, 8)}
	d.legs <- l
	return l, nil
}

func (d *legDialer) next(t *testing.T) *outLeg {
	t.Helper()
	select {
	case l := <-d.legs:
		return l
	case <-time.After(5 * time.Second):
		t.Fatal("no call was placed")
		return nil
	}
}

// routes is one outbound route for every tenant.
type routes struct{}

func (routes) OutboundRoutes(context.Context, sb.ID) ([]sb.OutboundRoute, error) {
	return []sb.OutboundRoute{{TrunkID: sb.NewID(), Target: "127.0.0.1:5097", Transport: "udp", CallerID: "+15550000000"}}, nil
}

// oneRemote is a cluster with one operator free on another instance.
type oneRemote struct{ remote sb.ID }

func (c *oneRemote) Publish(context.Context, []sb.Presence) error { return nil }
func (c *oneRemote) Candidates(_ context.Context, _ sb.ID, _ []sb.ID, skip []sb.ID) ([]sb.RemoteOperator, error) {
	if c.remote == (sb.ID{}) {
		c.remote = sb.NewID()
	}
	if slices.Contains(skip, c.remote) {
		return nil, nil
	}
	return []sb.RemoteOperator{{OperatorID: c.remote, Instance: "b", SIPAddr: "127.0.0.1:5096"}}, nil
}
func (c *oneRemote) Listen(ctx context.Context, _ func()) error { <-ctx.Done(); return nil }

// fakeRecordings starts a fakeRec for every call with consent.
type fakeRecordings struct {
	mu   sync.Mutex
	recs []*fakeRec
}

type recState int

const (
	recActive recState = iota + 1
	recComplete
	recDestroyed
)

type fakeRec struct {
	mu         sync.Mutex
	state      recState
	paused     bool
	fromCaller int // audio frames kept from the caller
	whileGone  int // frames tapped after it was stored or destroyed
	gaps       int // pauses marked
}

func (f *fakeRecordings) Begin(_ context.Context, _ *sb.Call, consent *sb.Consent, _, _ sb.Codec) (sb.ActiveRecording, error) {
	if consent == nil || !consent.Given {
		return nil, nil
	}
	r := &fakeRec{state: recActive}
	f.mu.Lock()
	f.recs = append(f.recs, r)
	f.mu.Unlock()
	return r, nil
}

func (f *fakeRecordings) ConsentDigit(context.Context, sb.ID) (byte, error) { return 0, nil }

func (r *fakeRec) Tap(fromCaller bool, _ []byte, _ time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.state != recActive:
		r.whileGone++
	case r.paused:
		r.whileGone++ // call control stops tapping while paused
	case fromCaller:
		r.fromCaller++
	}
}
func (r *fakeRec) Pause(time.Time) {
	r.mu.Lock()
	r.paused = true
	r.gaps++
	r.mu.Unlock()
}
func (r *fakeRec) Resume(time.Time) { r.mu.Lock(); r.paused = false; r.mu.Unlock() }
func (r *fakeRec) Finish(context.Context) (*sb.Recording, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.state = recComplete
	return &sb.Recording{ID: sb.NewID(), Status: sb.RecordingComplete}, nil
}
func (r *fakeRec) Destroy(context.Context, string) error {
	r.mu.Lock()
	r.state = recDestroyed
	r.mu.Unlock()
	return nil
}

// none reports whether no recording is in any of the states.
func (f *fakeRecordings) none(states ...recState) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.recs {
		r.mu.Lock()
		s := r.state
		r.mu.Unlock()
		if slices.Contains(states, s) {
			return false
		}
	}
	return true
}

func (f *fakeRecordings) tapsAfterEnd() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.recs {
		r.mu.Lock()
		n += r.whileGone
		r.mu.Unlock()
	}
	return n
}

// recordingsWant is what a cell expects of the call's recordings once it
// ended: one complete recording, or none that is not destroyed; how many
// of the caller's frames it kept (-1: not checked); whether a pause is
// marked in it.
type recordingsWant struct {
	complete   bool
	fromCaller int
	gap        bool
}

func (f *fakeRecordings) check(t *testing.T, w recordingsWant) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var complete []*fakeRec
	for _, r := range f.recs {
		r.mu.Lock()
		switch r.state {
		case recActive:
			t.Error("a recording was left running")
		case recComplete:
			complete = append(complete, r)
		}
		if r.whileGone > 0 {
			t.Errorf("%d frames reached a recording that was paused, stored or destroyed", r.whileGone)
		}
		r.mu.Unlock()
	}
	if !w.complete {
		if len(complete) > 0 {
			t.Errorf("%d recordings stored, want none", len(complete))
		}
		return
	}
	if len(complete) != 1 {
		t.Fatalf("%d recordings stored, want one", len(complete))
	}
	r := complete[0]
	r.mu.Lock()
	defer r.mu.Unlock()
	if w.fromCaller > 0 && r.fromCaller != w.fromCaller {
		t.Errorf("the recording kept %d of the caller's frames, want %d", r.fromCaller, w.fromCaller)
	}
	if w.gap && r.gaps == 0 {
		t.Error("the pause is not marked in the recording")
	}
}

// A service that stops while the caller's answer awaits its ACK ends the
// call as shutting down, on the service, and hangs the leg up: the 200 is
// out, so the dialog exists and the SIP leg ends it with a BYE (RFC 3261
// §15). It was recorded as the trunk's failure to acknowledge, and the
// leg was left to itself.
func TestShutdownDuringTheAnswer(t *testing.T) {
	h := newPhaseHarness(t, phaseNamed("talking"), true)
	goAvailable(t, h.sw, h.op1)
	h.caller = newLeg(sb.Codec{Name: "PCMU", ClockRate: 8000, DTMFType: 101})
	h.caller.answering = make(chan struct{})
	h.sw.DispatchInbound(inbound(h.caller))
	h.callID = h.op1.nextOffer(t)
	if err := h.sw.Accept(h.op1.id, h.callID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.caller.answering:
	case <-time.After(5 * time.Second):
		t.Fatal("the caller was never answered")
	}
	h.sw.Close()
	c := h.finalRecord(t)
	checkRecord(t, c, want{status: sb.CallFailed, by: sb.PartySystem, reason: "service shutting down"})
	if c.FailureLeg != sb.FailedOnService {
		t.Errorf("failed on %q, want the service", c.FailureLeg)
	}
	if did := h.caller.did(); !slices.Contains(did, "bye service shutting down") {
		t.Errorf("the caller's leg: %q, want a hang-up", did)
	}
}
