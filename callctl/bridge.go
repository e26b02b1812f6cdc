package callctl

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/media"
)

// Bridge relays RTP between a call's two legs without decoding it: packets
// keep their G.711 payload (converted between μ-law and A-law only when the
// legs negotiated different laws), get the outgoing stream's SSRC, sequence
// number and timestamp, and have their payload type mapped to the one the
// other side negotiated. RFC 4733 DTMF passes through and is reported.
// Each direction is counted for loss and jitter.
//
// The relay runs on the ports' own read loops; a Bridge starts no goroutine.
type Bridge struct {
	caller, operator sb.MediaPort
	fromCaller       relay // caller → operator
	toCaller         relay // operator → caller
}

// BridgeOption tunes a Bridge.
type BridgeOption func(*Bridge)

// WithRewriters sets the rewriters of the two outgoing streams. The
// operator's stream lives as long as the operator's PeerConnection, so call
// control hands each call's bridge the same rewriter to keep it continuous.
func WithRewriters(toOperator, toCaller *media.Rewriter) BridgeOption {
	return func(b *Bridge) {
		b.fromCaller.rw, b.toCaller.rw = toOperator, toCaller
	}
}

// WithDTMF sets a function called once per DTMF key that passes through the
// bridge, from the relay's goroutine; it must not block.
func WithDTMF(fn func(fromCaller bool, digit byte)) BridgeOption {
	return func(b *Bridge) {
		b.fromCaller.onDTMF = func(d byte) { fn(true, d) }
		b.toCaller.onDTMF = func(d byte) { fn(false, d) }
	}
}

// WithBridgeClock sets the clock used for jitter and timestamp re-basing.
func WithBridgeClock(now func() time.Time) BridgeOption {
	return func(b *Bridge) { b.fromCaller.now, b.toCaller.now = now, now }
}

// WithDelay sets a function given, for each packet relayed, the time
// from its arrival on the host (the input port's ReceiveClock) until the
// output port's WriteRTP returned: the packet is with the kernel then. It
// runs on the relay's goroutine and must not block or allocate. Ports
// that cannot tell when a packet arrived are not measured.
func WithDelay(fn func(fromCaller bool, d time.Duration)) BridgeOption {
	return func(b *Bridge) {
		b.fromCaller.delay = func(d time.Duration) { fn(true, d) }
		b.toCaller.delay = func(d time.Duration) { fn(false, d) }
	}
}

// NewBridge prepares a bridge between a caller's leg and an operator's leg.
// Start attaches it.
func NewBridge(caller, operator sb.MediaPort, opts ...BridgeOption) *Bridge {
	b := &Bridge{caller: caller, operator: operator}
	b.fromCaller.init(caller, operator)
	b.toCaller.init(operator, caller)
	for _, o := range opts {
		o(b)
	}
	for _, r := range []*relay{&b.fromCaller, &b.toCaller} {
		if r.rw == nil {
			r.rw = NewStreamRewriter(r.out.Codec().ClockRate)
		}
		if r.now == nil {
			r.now = time.Now
		}
	}
	return b
}

// NewStreamRewriter returns a rewriter for a new outgoing stream with a
// random SSRC, sequence number and timestamp (RFC 3550 §5.1).
func NewStreamRewriter(clockRate uint32) *media.Rewriter {
	return media.NewRewriter(rand.Uint32(), uint16(rand.Uint32()), rand.Uint32(), clockRate)
}

// Start attaches the bridge to both ports: from now on their packets are
// relayed.
func (b *Bridge) Start() {
	// Each bridge is a new stream on each side, even where the peer reuses
	// its SSRC from the last call.
	for _, r := range []*relay{&b.fromCaller, &b.toCaller} {
		if r.rw != nil {
			r.rw.Restart()
		}
	}
	// What was not relayed while the bridge was stopped (a hold) is not
	// loss.
	b.Rebase()
	b.caller.SetSink(b.fromCaller.handle)
	b.operator.SetSink(b.toCaller.handle)
}

// Stop detaches the bridge. Packets read after Stop are discarded by the
// ports.
func (b *Bridge) Stop() {
	b.caller.SetSink(nil)
	b.operator.SetSink(nil)
}

// Tap receives each audio payload the bridge relays, in the codec it
// arrived in, before any conversion: fromCaller tells the direction. It is
// called on the relay's goroutine and must copy what it keeps and not
// block. A recording is a tap.
type Tap func(fromCaller bool, payload []byte, at time.Time)

// SetTap attaches tap to both directions, or detaches it with nil. It may
// be called while the bridge runs: consent can arrive or be withdrawn
// mid-call.
func (b *Bridge) SetTap(tap Tap) {
	if tap == nil {
		b.fromCaller.tap.Store(nil)
		b.toCaller.tap.Store(nil)
		return
	}
	from := func(p []byte, at time.Time) { tap(true, p, at) }
	to := func(p []byte, at time.Time) { tap(false, p, at) }
	b.fromCaller.tap.Store(&from)
	b.toCaller.tap.Store(&to)
}

// Rebase starts the statistics of both directions afresh from their next
// packets, keeping what they counted: across a hold, the packets a side
// did not send are not loss.
func (b *Bridge) Rebase() {
	for _, r := range []*relay{&b.fromCaller, &b.toCaller} {
		r.mu.Lock()
		r.stats.Rebase()
		r.mu.Unlock()
	}
}

// Stats returns the statistics of both directions so far.
func (b *Bridge) Stats() (fromCaller, toCaller sb.MediaStats) {
	return b.fromCaller.snapshot(), b.toCaller.snapshot()
}

type relay struct {
	out sb.MediaPort
	now func() time.Time

	inAudio, outAudio uint8
	inDTMF, outDTMF   uint8
	hasInDTMF         bool
	hasOutDTMF        bool
	convert           func([]byte) // μ-law ↔ A-law, nil when both sides agree
	onDTMF            func(digit byte)
	clock             sb.ReceiveClock     // the input port's, nil if it has none
	delay             func(time.Duration) // nil: not measured
	tap               atomic.Pointer[func(payload []byte, at time.Time)]

	inName      string     // the incoming codec
	mu          sync.Mutex // guards what follows: written by the relay, read by Stats
	rw          *media.Rewriter
	heard       bool // a frame louder than silence came through
	stats       media.Stats
	writeErrors uint64
	dtmfTS      uint32
	dtmfSeen    bool
}

func (r *relay) init(inPort, out sb.MediaPort) {
	in, oc := inPort.Codec(), out.Codec()
	r.out = out
	r.clock, _ = inPort.(sb.ReceiveClock)
	r.inAudio, r.outAudio = in.PayloadType, oc.PayloadType
	r.inName = in.Name
	r.inDTMF, r.outDTMF = in.DTMFType, oc.DTMFType
	r.hasInDTMF, r.hasOutDTMF = in.DTMFType != 0, oc.DTMFType != 0
	r.stats.ClockRate = in.ClockRate
	switch {
	case in.Name == "PCMU" && oc.Name == "PCMA":
		r.convert = media.UlawToAlaw
	case in.Name == "PCMA" && oc.Name == "PCMU":
		r.convert = media.AlawToUlaw
	}
}

// handle relays one packet. It runs on the input port's read loop, and it is
// the hot path: no allocation, one short critical section.
func (r *relay) handle(pkt []byte) {
	h, ok := media.ParseHeader(pkt)
	if !ok {
		return
	}
	now := r.now()
	var digit byte
	r.mu.Lock()
	r.stats.Update(&h, h.PayloadEnd-h.PayloadOffset, now)
	switch {
	case h.PayloadType == r.inAudio:
		if !r.heard && (r.inName == "PCMU" || r.inName == "PCMA") && !media.Silent(pkt[h.PayloadOffset:h.PayloadEnd], r.inName == "PCMA") {
			r.heard = true // one loud frame is enough: no more checks
		}
		if tap := r.tap.Load(); tap != nil {
			(*tap)(pkt[h.PayloadOffset:h.PayloadEnd], now)
		}
		if r.convert != nil {
			r.convert(pkt[h.PayloadOffset:h.PayloadEnd])
		}
		media.SetPayloadType(pkt, r.outAudio)
	case r.hasInDTMF && h.PayloadType == r.inDTMF:
		digit = r.dtmfEnd(&h, pkt)
		if !r.hasOutDTMF {
			r.mu.Unlock()
			r.report(digit)
			return
		}
		media.SetPayloadType(pkt, r.outDTMF)
	default: // comfort noise and anything not negotiated
		r.mu.Unlock()
		return
	}
	r.rw.Rewrite(pkt, &h, now)
	r.mu.Unlock()

	// Report a key before passing its packet on: whoever sees the packet
	// arrive can count on the key being on its way to the timeline.
	r.report(digit)
	if err := r.out.WriteRTP(pkt); err != nil {
		r.mu.Lock()
		r.writeErrors++
		r.mu.Unlock()
		return
	}
	r.measure()
}

// maxRelayDelay is the longest a relayed packet is taken to have spent in
// the service: the histogram's top bucket. Audio held longer is useless,
// and a longer figure is another packet's stamp.
const maxRelayDelay = 2 * time.Second

// measure reports how long the packet just sent spent in the service.
// The wall clock, not the bridge's: the kernel stamps arrivals with it.
func (r *relay) measure() {
	if r.delay == nil || r.clock == nil {
		return
	}
	at := r.clock.ReceivedAt()
	if at == 0 {
		return
	}
	// A clock stepped back is not a delay; nor is one past maxRelayDelay:
	// a stamp of another packet (a stale slot of the shared port's table).
	if d := time.Now().UnixNano() - at; d >= 0 && d <= int64(maxRelayDelay) {
		r.delay(time.Duration(d))
	}
}

// dtmfEnd returns the key of an event's first end packet (the end packet is
// sent three times, RFC 4733 §2.5.1.4), or 0.
func (r *relay) dtmfEnd(h *media.Header, pkt []byte) byte {
	ev, ok := media.ParseDTMF(pkt[h.PayloadOffset:h.PayloadEnd])
	if !ok || !ev.End || (r.dtmfSeen && r.dtmfTS == h.Timestamp) {
		return 0
	}
	r.dtmfSeen, r.dtmfTS = true, h.Timestamp
	return media.DTMFDigit(ev.Event)
}

func (r *relay) report(digit byte) {
	if digit != 0 && r.onDTMF != nil {
		r.onDTMF(digit)
	}
}

func (r *relay) snapshot() sb.MediaStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return sb.MediaStats{
		Packets:  r.stats.Packets,
		Bytes:    r.stats.Bytes,
		Lost:     r.stats.Lost(),
		JitterMS: float64(r.stats.Jitter().Microseconds()) / 1000,
		Silent:   r.stats.Packets > 0 && !r.heard && (r.inName == "PCMU" || r.inName == "PCMA"),
	}
}
