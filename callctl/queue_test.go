package callctl_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/callctl"
	"github.com/switchboard-voice/switchboard/media"
)

// queues is a QueueDirectory in memory: numbers to queues.
type queues struct {
	byNumber map[string]*sb.Queue
	byID     map[sb.ID]*sb.Queue
}

func newQueues(qs ...*sb.Queue) *queues {
	d := &queues{byNumber: map[string]*sb.Queue{}, byID: map[sb.ID]*sb.Queue{}}
	for _, q := range qs {
		d.byID[q.ID] = q
		for _, n := range q.Numbers {
			d.byNumber[n] = q
		}
	}
	return d
}

func (d *queues) QueueForNumber(_ context.Context, tenantID sb.ID, number string) (*sb.Queue, error) {
	if q := d.byNumber[number]; q != nil && q.TenantID == tenantID {
		return q, nil
	}
	return nil, nil
}

func (d *queues) QueueByID(_ context.Context, tenantID, id sb.ID) (*sb.Queue, error) {
	if q := d.byID[id]; q != nil && q.TenantID == tenantID {
		return q, nil
	}
	return nil, sb.Errorf(sb.ENOTFOUND, "queue not found")
}

func queue(name string, wait time.Duration, members ...sb.ID) *sb.Queue {
	return &sb.Queue{ID: sb.NewID(), TenantID: tenantA, Name: name, MaxWait: wait, Members: members,
		Overflow: sb.Overflow{Kind: sb.OverflowReject}, Numbers: []string{"+1555" + name}}
}

// call dispatches a call from the caller to the queue's number.
func call(sw *callctl.Switch, q *sb.Queue, from string) *leg {
	l := newLeg(sb.PCMU)
	in := inbound(l)
	in.From, in.To = from, q.Numbers[0]
	sw.DispatchInbound(in)
	return l
}

// callFrom waits for the record of the call from the caller.
func (r *recorder) callFrom(t *testing.T, from string) sb.Call {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		r.mu.Lock()
		for _, c := range r.calls {
			if c.From == from {
				r.mu.Unlock()
				return c
			}
		}
		r.mu.Unlock()
	}
	t.Fatalf("no call from %s", from)
	return sb.Call{}
}

// waitActions waits until the leg did what is wanted.
func waitActions(t *testing.T, l *leg, want ...string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if slices.Equal(l.did(), want) {
			return
		}
	}
	t.Fatalf("leg did %q, want %q", l.did(), want)
}

// Callers who find the queue's only operator busy wait, hearing ringback,
// and are offered to them in the order they came when they are free.
func TestQueueCallersWaitInTurn(t *testing.T) {
	op := newOperator(tenantA)
	sales := queue("sales", 5*time.Second, op.id)
	sw, rec := newSwitch(t, callctl.WithQueues(newQueues(sales)))
	goAvailable(t, sw, op)

	first := call(sw, sales, "first")
	if err := sw.Accept(op.id, op.nextOffer(t)); err != nil {
		t.Fatal(err)
	}
	second := call(sw, sales, "second")
	waitActions(t, second, "ring") // in line: it rings once it waits
	third := call(sw, sales, "third")
	waitActions(t, third, "ring")
	if n := sw.Waiting(tenantA)[sales.ID]; n != 2 {
		t.Errorf("%d callers waiting in sales, want 2", n)
	}
	// The supervisors' floor: the operator busy on the first call, the
	// two callers in line in the order they came; another tenant's floor
	// shows none of it.
	floor := sw.Floor(tenantA)
	if len(floor.Operators) != 1 || floor.Operators[0].OperatorID != op.id || floor.Operators[0].State != "busy" ||
		floor.Operators[0].CallID == nil || *floor.Operators[0].CallID != rec.callFrom(t, "first").ID {
		t.Errorf("operators on the floor: %+v", floor.Operators)
	}
	if len(floor.Waiting) != 2 || floor.Waiting[0].CallID != rec.callFrom(t, "second").ID || floor.Waiting[1].CallID != rec.callFrom(t, "third").ID ||
		floor.Waiting[0].QueueID != sales.ID || floor.Waiting[0].Since.IsZero() || floor.Waiting[1].Since.Before(floor.Waiting[0].Since) {
		t.Errorf("callers waiting on the floor: %+v", floor.Waiting)
	}
	if other := sw.Floor(tenantB); len(other.Operators)+len(other.Waiting) != 0 {
		t.Errorf("another tenant's floor: %+v", other)
	}

	first.events <- sb.LegEvent{Kind: sb.LegHungUp}
	if got := op.nextOffer(t); got != rec.callFrom(t, "second").ID {
		t.Fatalf("the free operator was offered %s, not the caller who waited longest", got)
	}
	if err := sw.Accept(op.id, rec.callFrom(t, "second").ID); err != nil {
		t.Fatal(err)
	}
	waitActions(t, second, "ring", "answer")
	if n := sw.Waiting(tenantA)[sales.ID]; n != 1 {
		t.Errorf("%d callers waiting after one was answered, want 1", n)
	}
	third.events <- sb.LegEvent{Kind: sb.LegCanceled}
	for {
		c := rec.waitEnded(t)
		if c.From != "third" {
			continue
		}
		if c.Status != sb.CallCanceled || c.Reason != "caller gave up waiting" || c.OperatorID != nil {
			t.Errorf("record of the caller who gave up: %q %q", c.Status, c.Reason)
		}
		if ev := rec.eventsOf(c.ID); !slices.Contains(ev, sb.EventQueued) || slices.Contains(ev, sb.EventOffered) {
			t.Errorf("events of the caller who gave up: %v", ev)
		}
		break
	}
	if n := sw.Waiting(tenantA)[sales.ID]; n != 0 {
		t.Errorf("%d callers still waiting", n)
	}
}

// Only the queue's members take its calls.
func TestQueueOffersOnlyItsMembers(t *testing.T) {
	member, other := newOperator(tenantA), newOperator(tenantA)
	support := queue("support", 5*time.Second, member.id)
	sw, rec := newSwitch(t, callctl.WithQueues(newQueues(support)))
	goAvailable(t, sw, other)
	l := call(sw, support, "caller")
	waitActions(t, l, "ring")
	select {
	case n := <-other.notes:
		t.Fatalf("an operator outside the queue was told %q", n)
	case <-time.After(100 * time.Millisecond):
	}
	goAvailable(t, sw, member)
	if got := member.nextOffer(t); got != rec.callFrom(t, "caller").ID {
		t.Fatalf("member offered %s", got)
	}
}

// A caller who waited the queue's longest is refused clearly, or moves on
// to the overflow queue, whose members take the call.
func TestQueueOverflow(t *testing.T) {
	t.Run("reject", func(t *testing.T) {
		sales := queue("sales", 200*time.Millisecond)
		sw, rec := newSwitch(t, callctl.WithQueues(newQueues(sales)))
		l := call(sw, sales, "caller")
		c := rec.waitEnded(t)
		if c.Status != sb.CallNoAnswer || c.SIPCode != 480 || c.FailureStage != sb.StageRouting {
			t.Errorf("record %q %d at %q", c.Status, c.SIPCode, c.FailureStage)
		}
		waitActions(t, l, "ring", "reject 480 no operator free in queue sales within 200ms")
		if ev := rec.eventsOf(c.ID); !slices.Contains(ev, sb.EventQueueTimeout) {
			t.Errorf("events %v", ev)
		}
	})
	t.Run("to another queue", func(t *testing.T) {
		backup := newOperator(tenantA)
		second := queue("second", time.Second, backup.id)
		first := queue("first", 200*time.Millisecond, sb.NewID())
		first.Overflow = sb.Overflow{Kind: sb.OverflowQueue, QueueID: &second.ID}
		sw, rec := newSwitch(t, callctl.WithQueues(newQueues(first, second)))
		goAvailable(t, sw, backup)
		start := time.Now()
		call(sw, first, "caller")
		id := backup.nextOffer(t)
		if waited := time.Since(start); waited < 200*time.Millisecond {
			t.Errorf("offered to the overflow queue after %s, before the first queue's wait", waited)
		}
		if id != rec.callFrom(t, "caller").ID {
			t.Errorf("offered %s", id)
		}
	})
}

// outLeg is an OutboundLeg for forwarding tests.
type outLeg struct {
	media  *port
	events chan sb.LegEvent
	mu     sync.Mutex
	hungUp bool
}

func (o *outLeg) Events() <-chan sb.LegEvent { return o.events }
func (o *outLeg) Media() sb.MediaPort        { return o.media }
func (o *outLeg) Hangup(context.Context, string) error {
	o.mu.Lock()
	o.hungUp = true
	o.mu.Unlock()
	return nil
}
func (o *outLeg) Hold(context.Context, bool) error { return nil }
func (o *outLeg) Close() error                     { return nil }
func (o *outLeg) SIPTrace() []sb.SIPMessage        { return nil }
func (o *outLeg) SIPCallID() string                { return "fwd@switchboard" }

// dialer hands out one outLeg and remembers where it was sent.
type dialer struct {
	leg    *outLeg
	routes chan sb.OutboundRoute
	users  chan string
}

func (d *dialer) Dial(_ context.Context, r sb.OutboundRoute, number string) (sb.OutboundLeg, error) {
	d.routes <- r
	d.users <- number
	return d.leg, nil
}

// A queue may overflow to a SIP URI: switchboard places that call, answers
// the caller only when it is answered, bridges the two, and ends the
// caller's side when the forwarded party hangs up.
func TestQueueOverflowForwardsToSIPURI(t *testing.T) {
	night := queue("night", 100*time.Millisecond)
	night.Overflow = sb.Overflow{Kind: sb.OverflowURI, URI: "sip:voicemail@127.0.0.1:5080;transport=tcp"}
	out := &outLeg{media: &port{codec: sb.PCMA}, events: make(chan sb.LegEvent, 4)}
	d := &dialer{leg: out, routes: make(chan sb.OutboundRoute, 1), users: make(chan string, 1)}
	sw, rec := newSwitch(t, callctl.WithQueues(newQueues(night)), callctl.WithDialer(d, nil))
	l := call(sw, night, "caller")

	select {
	case r := <-d.routes:
		if r.Target != "127.0.0.1:5080" || r.Transport != "tcp" || <-d.users != "voicemail" {
			t.Errorf("forwarded to %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the call was not forwarded")
	}
	waitActions(t, l, "ring") // not answered before the forwarded party is
	out.events <- sb.LegEvent{Kind: sb.LegAnswered}
	waitActions(t, l, "ring", "answer")

	l.media.deliver(append(media.AppendHeader(nil, false, 0, 1, 0, 9), 0xff, 0xff))
	out.media.deliver(append(media.AppendHeader(nil, false, 8, 1, 0, 9), 0xd5, 0xd5))
	if len(out.media.packets()) != 1 || len(l.media.packets()) != 1 {
		t.Errorf("bridged %d packets to the forwarded party, %d to the caller; want 1 each", len(out.media.packets()), len(l.media.packets()))
	}

	out.events <- sb.LegEvent{Kind: sb.LegHungUp}
	c := rec.waitEnded(t)
	if c.Status != sb.CallCompleted || c.HangupBy != sb.PartyForwarded || c.OperatorID != nil || c.FromCaller.Packets != 1 {
		t.Errorf("record %q by %q, operator %v, %d packets from the caller", c.Status, c.HangupBy, c.OperatorID, c.FromCaller.Packets)
	}
	if ev := rec.eventsOf(c.ID); !slices.Contains(ev, sb.EventForwarded) || !slices.Contains(ev, sb.EventAnswered) {
		t.Errorf("events %v", ev)
	}
	if got := l.did(); len(got) != 3 || got[2] != "bye the forwarded party hung up" {
		t.Errorf("caller's leg: %q", got)
	}
}

// forwardingQueue is a switch whose queue "night" has no operators and
// forwards its calls to a SIP URI after wait, placed through d, whose
// legs are out (one at a time: each test ends a call before the next).
func forwardingQueue(t *testing.T, wait time.Duration) (*sb.Queue, *callctl.Switch, *recorder, *outLeg, *dialer) {
	t.Helper()
	night := queue("night", wait)
	night.Overflow = sb.Overflow{Kind: sb.OverflowURI, URI: "sip:voicemail@127.0.0.1:5080"}
	out := &outLeg{media: &port{codec: sb.PCMU}, events: make(chan sb.LegEvent, 4)}
	d := &dialer{leg: out, routes: make(chan sb.OutboundRoute, 2), users: make(chan string, 2)}
	sw, rec := newSwitch(t, callctl.WithQueues(newQueues(night)), callctl.WithDialer(d, nil))
	return night, sw, rec, out, d
}

// A forward carries the hops the caller's INVITE left (its Max-Forwards
// less one), so that a forward leading back here ends instead of looping;
// a call whose INVITE left none is refused with 483 and nothing is dialled.
func TestForwardKeepsTheHopLimit(t *testing.T) {
	night, sw, rec, out, d := forwardingQueue(t, 50*time.Millisecond)

	for _, c := range []struct {
		from string
		hops int
	}{{"caller-none", sb.NoHops}, {"caller-5", 5}, {"caller-69", 69}} {
		l := newLeg(sb.PCMU)
		in := inbound(l)
		in.From, in.To, in.Hops = c.from, night.Numbers[0], c.hops
		sw.DispatchInbound(in)
		if c.hops == sb.NoHops {
			rec := rec.waitEnded(t)
			if got := l.did(); len(got) == 0 || !strings.HasPrefix(got[len(got)-1], "reject 483") || rec.Status != sb.CallFailed {
				t.Errorf("a call with no hops left: leg %q, record %q; want refused with 483", got, rec.Status)
			}
			select {
			case r := <-d.routes:
				t.Errorf("dialled %+v for a call with no hops left", r)
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		select {
		case r := <-d.routes:
			<-d.users
			// At most 10: a forward that leads back here ends within ten
			// calls, not the caller's 70.
			if want := min(c.hops, 10); r.MaxForwards != want {
				t.Errorf("forwarded with Max-Forwards %d, want %d", r.MaxForwards, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the call was not forwarded")
		}
		out.events <- sb.LegEvent{Kind: sb.LegAnswered}
		out.events <- sb.LegEvent{Kind: sb.LegHungUp}
		rec.waitEnded(t)
	}
}

// When the party a call was forwarded to does not take it, the caller
// hears busy or decline as that party said them, anything else as 480.
func TestForwardedRefusalReachesTheCaller(t *testing.T) {
	for _, c := range []struct{ got, want int }{{486, 486}, {600, 486}, {603, 603}, {404, 480}, {503, 480}} {
		night, sw, rec, out, d := forwardingQueue(t, 10*time.Millisecond)
		l := call(sw, night, "caller")
		<-d.routes
		out.events <- sb.LegEvent{Kind: sb.LegFailed, Code: c.got, Reason: "no"}
		rec.waitEnded(t)
		if got := l.did(); len(got) == 0 || !strings.HasPrefix(got[len(got)-1], "reject "+strconv.Itoa(c.want)+" ") {
			t.Errorf("forwarded party said %d: the caller's leg %q, want reject %d", c.got, got, c.want)
		}
	}
}

// A queue that forwards at once (no wait) rings the caller when the party
// it forwarded to rings, not before: the caller hears ringback instead of
// silence until the answer.
func TestForwardRingsTheCallerWhenTheTargetRings(t *testing.T) {
	night, sw, rec, out, d := forwardingQueue(t, 0)
	l := call(sw, night, "caller")
	<-d.routes
	if got := l.did(); len(got) != 0 {
		t.Fatalf("the caller's leg before the target rang: %q", got)
	}
	out.events <- sb.LegEvent{Kind: sb.LegRinging}
	waitActions(t, l, "ring")
	out.events <- sb.LegEvent{Kind: sb.LegAnswered}
	waitActions(t, l, "ring", "answer")
	out.events <- sb.LegEvent{Kind: sb.LegHungUp}
	rec.waitEnded(t)
}

// An answered call transferred to a queue waits for its member, who is on
// another call, and is offered to them when they are free; one transferred
// to a SIP URI is bridged to the call switchboard places there.
func TestTransferToQueueAndURI(t *testing.T) {
	first, member := newOperator(tenantA), newOperator(tenantA)
	billing := queue("billing", 5*time.Second, member.id)
	out := &outLeg{media: &port{codec: sb.PCMU}, events: make(chan sb.LegEvent, 4)}
	d := &dialer{leg: out, routes: make(chan sb.OutboundRoute, 1), users: make(chan string, 1)}
	sw, rec := newSwitch(t, callctl.WithQueues(newQueues(billing)), callctl.WithDialer(d, nil))

	// The member is busy with a call of their own.
	goAvailable(t, sw, member)
	other := newLeg(sb.PCMU)
	in := inbound(other)
	in.From = "other"
	sw.DispatchInbound(in)
	otherID := member.nextOffer(t)
	if err := sw.Accept(member.id, otherID); err != nil {
		t.Fatal(err)
	}

	goAvailable(t, sw, first)
	l := newLeg(sb.PCMU)
	in = inbound(l)
	in.From = "caller"
	sw.DispatchInbound(in)
	id := first.nextOffer(t)
	if err := sw.Accept(first.id, id); err != nil {
		t.Fatal(err)
	}
	waitActions(t, l, "ring", "answer")
	if err := sw.TransferCall(first.id, id, sb.TransferTarget{QueueID: &billing.ID}); err != nil {
		t.Fatal(err)
	}
	for sw.Waiting(tenantA)[billing.ID] != 1 {
		time.Sleep(5 * time.Millisecond)
	}
	other.events <- sb.LegEvent{Kind: sb.LegHungUp}
	if got := member.nextOffer(t); got != id {
		t.Fatalf("member offered %s, want the transferred call", got)
	}
	if err := sw.Accept(member.id, id); err != nil {
		t.Fatal(err)
	}
	for c := rec.callFrom(t, "caller"); c.OperatorID == nil || *c.OperatorID != member.id; c = rec.callFrom(t, "caller") {
		time.Sleep(5 * time.Millisecond)
	}

	// The member hands the caller on to a SIP URI, through the API.
	if err := sw.TransferByAPI(tenantB, id, sb.TransferTarget{URI: "sip:2001@127.0.0.1"}); sb.ErrorCode(err) != sb.ECONFLICT {
		t.Errorf("another tenant transferred the call: %v", err)
	}
	if err := sw.TransferByAPI(tenantA, id, sb.TransferTarget{URI: "sip:2001@127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if r := <-d.routes; r.Target != "127.0.0.1:5060" || <-d.users != "2001" {
		t.Errorf("transferred to %+v", r)
	}
	out.events <- sb.LegEvent{Kind: sb.LegAnswered}
	for len(out.media.packets()) == 0 {
		l.media.deliver(append(media.AppendHeader(nil, false, 0, 1, 0, 9), 0xff, 0xff))
		time.Sleep(5 * time.Millisecond)
	}
	l.events <- sb.LegEvent{Kind: sb.LegHungUp}
	var c sb.Call
	for c = rec.waitEnded(t); c.From != "caller"; c = rec.waitEnded(t) {
	}
	if c.Status != sb.CallCompleted || c.HangupBy != sb.PartyCaller || *c.OperatorID != member.id {
		t.Errorf("record %q by %q, operator %v", c.Status, c.HangupBy, c.OperatorID)
	}
	if got := rec.eventsOf(c.ID); len(slices.DeleteFunc(slices.Clone(got), func(e sb.EventType) bool { return e != sb.EventTransferred })) != 2 {
		t.Errorf("timeline %v: want two transfers", got)
	}
	if err := sw.TransferCall(first.id, id, sb.TransferTarget{}); sb.ErrorCode(err) != sb.EINVALID {
		t.Errorf("a transfer to nowhere: %v", err)
	}
}

// When the operator's connection drops mid-call, the call waits: the
// operator's page, back on a new connection, takes it again and audio
// flows to it; a page that does not come back in time ends the call.
func TestOperatorComesBackToTheCall(t *testing.T) {
	sw, rec := newSwitch(t, callctl.WithReconnectGrace(300*time.Millisecond))
	op := newOperator(tenantA)
	goAvailable(t, sw, op)
	l := newLeg(sb.PCMU)
	sw.DispatchInbound(inbound(l))
	id := op.nextOffer(t)
	if err := sw.Accept(op.id, id); err != nil {
		t.Fatal(err)
	}
	waitActions(t, l, "ring", "answer")

	sw.Disconnected(op.id)
	back := &operator{id: op.id, tenant: op.tenant, media: &port{codec: sb.PCMU}, notes: make(chan string, 64)}
	var announced sb.CallOffer
	if !sw.Reattach(back, func(o sb.CallOffer) { announced = o }) || announced.CallID != id || announced.From != "+15551230000" {
		t.Fatalf("reattach: announced %+v", announced)
	}
	if n := back.next(t); n != "connected" {
		t.Fatalf("the new connection was told %q", n)
	}
	for len(back.media.packets()) == 0 {
		l.media.deliver(append(media.AppendHeader(nil, false, 0, 1, 0, 9), 0xff))
		time.Sleep(5 * time.Millisecond)
	}
	if sw.Reattach(back, func(sb.CallOffer) {}) {
		t.Error("a connection already on its call took it again")
	}
	l.events <- sb.LegEvent{Kind: sb.LegHungUp}
	c := rec.waitEnded(t)
	if c.Status != sb.CallCompleted || c.HangupBy != sb.PartyCaller {
		t.Errorf("record %q by %q", c.Status, c.HangupBy)
	}
	if ev := rec.eventsOf(c.ID); !slices.Contains(ev, sb.EventOperatorLost) || !slices.Contains(ev, sb.EventOperatorBack) {
		t.Errorf("events %v", ev)
	}

	// This time the page does not come back.
	for n := back.next(t); !strings.HasPrefix(n, "ended"); n = back.next(t) {
	}
	l2 := newLeg(sb.PCMU)
	sw.DispatchInbound(inbound(l2))
	id2 := back.nextOffer(t)
	if err := sw.Accept(back.id, id2); err != nil {
		t.Fatal(err)
	}
	waitActions(t, l2, "ring", "answer")
	sw.Disconnected(back.id)
	c = rec.waitEnded(t)
	if c.ID != id2 || c.Status != sb.CallCompleted || c.FailureLeg != sb.FailedOnBrowser || c.FailureStage != sb.StageMedia || c.HangupBy != sb.PartyOperator {
		t.Errorf("record of the call the operator never came back to: %q on %q at %q by %q", c.Status, c.FailureLeg, c.FailureStage, c.HangupBy)
	}
	waitActions(t, l2, "ring", "answer", "bye operator disconnected")
	again := newOperator(tenantA)
	again.id = back.id
	goAvailable(t, sw, again) // the forgotten operator starts afresh
}
