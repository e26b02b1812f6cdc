package callctl_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// port is an in-memory MediaPort: deliver plays the far end sending a
// packet; written collects what the bridge sent.
type port struct {
	codec sb.Codec
	sink  atomic.Pointer[func([]byte)]

	mu      sync.Mutex
	written [][]byte
}

func (p *port) Codec() sb.Codec { return p.codec }

func (p *port) SetSink(fn func([]byte)) {
	if fn == nil {
		p.sink.Store(nil)
		return
	}
	p.sink.Store(&fn)
}

func (p *port) WriteRTP(pkt []byte) error {
	p.mu.Lock()
	p.written = append(p.written, append([]byte(nil), pkt...))
	p.mu.Unlock()
	return nil
}

func (p *port) deliver(pkt []byte) {
	if fn := p.sink.Load(); fn != nil {
		(*fn)(pkt)
	}
}

func (p *port) packets() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.written...)
}

// leg is a TrunkLeg that records what call control did to it.
type leg struct {
	media  *port
	events chan sb.LegEvent
	answer error
	// answering, when set, is closed as Answer begins, which then waits
	// for its context to end: the 200 is out, the ACK not in.
	answering chan struct{}
	// holds, when set, answers each Hold (a slow trunk, or one refusing);
	// otherwise the trunk agrees at once.
	holds chan error

	mu      sync.Mutex
	actions []string
	closed  bool
}

// SIPTrace is one INVITE, enough for call control to pass on.
func (l *leg) SIPTrace() []sb.SIPMessage {
	return []sb.SIPMessage{{Inbound: true, Transport: "udp", Message: "INVITE sip:2000@127.0.0.1 SIP/2.0\r\n\r\n"}}
}

func newLeg(codec sb.Codec) *leg {
	return &leg{media: &port{codec: codec}, events: make(chan sb.LegEvent, 8)}
}

func (l *leg) do(a string) {
	l.mu.Lock()
	l.actions = append(l.actions, a)
	l.mu.Unlock()
}

func (l *leg) Ring(context.Context) error { l.do("ring"); return nil }
func (l *leg) Answer(ctx context.Context) error {
	l.do("answer")
	if l.answering != nil {
		close(l.answering)
		<-ctx.Done()
		return ctx.Err()
	}
	return l.answer
}
func (l *leg) Reject(_ context.Context, code int, reason string) error {
	l.do("reject " + itoa(code) + " " + reason)
	return nil
}
func (l *leg) Hangup(_ context.Context, reason string) error { l.do("bye " + reason); return nil }
func (l *leg) Hold(ctx context.Context, held bool) error {
	if held {
		l.do("hold")
	} else {
		l.do("unhold")
	}
	if l.holds == nil {
		return nil
	}
	select {
	case err := <-l.holds:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
func (l *leg) Events() <-chan sb.LegEvent { return l.events }
func (l *leg) Media() sb.MediaPort        { return l.media }
func (l *leg) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	return nil
}

func (l *leg) did() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.actions...)
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// operator is an OperatorConn whose notifications land on a channel.
type operator struct {
	id, tenant sb.ID
	media      *port
	notes      chan string
}

func newOperator(tenant sb.ID) *operator {
	return &operator{id: sb.NewID(), tenant: tenant, media: &port{codec: sb.Codec{Name: "PCMU", ClockRate: 8000, DTMFType: 126}}, notes: make(chan string, 64)}
}

func (o *operator) OperatorID() sb.ID { return o.id }
func (o *operator) TenantID() sb.ID   { return o.tenant }
func (o *operator) Offer(c sb.CallOffer) error {
	o.notes <- "offer " + c.CallID.String()
	return nil
}
func (o *operator) Revoke(id sb.ID, reason string) { o.notes <- "revoke " + reason }
func (o *operator) Connected(id sb.ID)             { o.notes <- "connected" }
func (o *operator) Ended(id sb.ID, reason string)  { o.notes <- "ended " + reason }
func (o *operator) StateChanged(avail bool, reason string) {
	if avail {
		o.notes <- "available"
	} else {
		o.notes <- "away " + reason
	}
}
func (o *operator) Move(reason string)   { o.notes <- "move " + reason }
func (o *operator) Held(_ sb.ID, h bool) { o.notes <- fmt.Sprint("held ", h) }
func (o *operator) Media() sb.MediaPort  { return o.media }

// next returns the operator's next notification, failing after a while.
func (o *operator) next(t *testing.T) string {
	t.Helper()
	select {
	case n := <-o.notes:
		return n
	case <-time.After(5 * time.Second):
		t.Fatal("operator got no notification")
		return ""
	}
}

// nextOffer skips state notifications up to the next offer and returns the
// call ID.
func (o *operator) nextOffer(t *testing.T) sb.ID {
	t.Helper()
	for {
		n := o.next(t)
		if len(n) > 6 && n[:6] == "offer " {
			id, err := sb.ParseID(n[6:])
			if err != nil {
				t.Fatal(err)
			}
			return id
		}
	}
}

// recorder keeps call records in memory.
type recorder struct {
	ended chan sb.Call // each call's final record

	mu     sync.Mutex
	calls  map[sb.ID]sb.Call
	events map[sb.ID][]sb.EventType
	traces map[sb.ID]*sb.CallTrace
	// storedAtEnd is, per call, what was stored when its final record
	// was written: its events and whether its trace.
	storedAtEnd map[sb.ID]storedAtEnd
}

type storedAtEnd struct {
	events []sb.EventType
	traced bool
}

func (r *recorder) AddCallTrace(_ context.Context, t *sb.CallTrace) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.traces == nil {
		r.traces = map[sb.ID]*sb.CallTrace{}
	}
	r.traces[t.CallID] = t
	return nil
}

func newRecorder() *recorder {
	return &recorder{ended: make(chan sb.Call, 16), calls: map[sb.ID]sb.Call{}, events: map[sb.ID][]sb.EventType{},
		storedAtEnd: map[sb.ID]storedAtEnd{}}
}

func (r *recorder) CreateCall(ctx context.Context, c *sb.Call) error { return r.UpdateCall(ctx, c) }
func (r *recorder) WriteCallStep(ctx context.Context, s *sb.CallStep) error {
	return s.WriteApart(ctx, r)
}
func (r *recorder) UpdateCall(_ context.Context, c *sb.Call) error {
	r.mu.Lock()
	r.calls[c.ID] = *c
	if c.EndedAt != nil {
		r.storedAtEnd[c.ID] = storedAtEnd{events: slices.Clone(r.events[c.ID]), traced: r.traces[c.ID] != nil}
	}
	r.mu.Unlock()
	if c.EndedAt != nil {
		r.ended <- *c
	}
	return nil
}

// waitEnded returns the next call record that is final.
func (r *recorder) waitEnded(t *testing.T) sb.Call {
	t.Helper()
	select {
	case c := <-r.ended:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no call ended")
		return sb.Call{}
	}
}

func (r *recorder) eventsOf(id sb.ID) []sb.EventType {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sb.EventType(nil), r.events[id]...)
}
func (r *recorder) AddCallEvents(_ context.Context, evs ...*sb.CallEvent) error {
	r.mu.Lock()
	for _, e := range evs {
		r.events[e.CallID] = append(r.events[e.CallID], e.Type)
	}
	r.mu.Unlock()
	return nil
}
