package webrtc

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	sb "github.com/switchboard-voice/switchboard"
)

// Visitor call states, as the visitor's page polls them.
const (
	VisitorWaiting  = "waiting"  // offered to operators
	VisitorAnswered = "answered" // an operator took the call
	VisitorEnded    = "ended"
)

// connectTimeout is how long an answered visitor's ICE and DTLS may take.
const connectTimeout = 15 * time.Second

// Visitor is a browser caller's leg (a website's widget, a messenger):
// the call's TrunkLeg, on a PeerConnection made from the visitor's offer.
// Signalling is WHIP's: the offer and answer were exchanged over HTTP, and
// the visitor hangs up by deleting the session, so everything the SIP leg
// says in messages the visitor learns by polling State.
type Visitor struct {
	pc        *webrtc.PeerConnection
	port      *port
	held      atomic.Bool
	connected chan struct{}
	failed    chan struct{}
	closeOnce sync.Once
	release   func() // counts it closed

	mu       sync.Mutex
	state    string
	reason   string
	answered bool
	closed   bool
	events   chan sb.LegEvent
}

var _ sb.TrunkLeg = (*Visitor)(nil)

// AnswerVisitor takes a browser caller's SDP offer (ICE candidates in it:
// WHIP without trickle) and returns the visitor's leg and our answer, with
// our candidates in it. Opus is taken first, and carried to the operator
// unchanged; then G.711. An offer with neither is refused: nothing is
// transcoded, and a call that cannot carry audio is better refused than
// half working.
func (e *Engine) AnswerVisitor(ctx context.Context, offer string) (*Visitor, string, error) {
	codecs, err := offeredAudio(offer)
	if err != nil {
		return nil, "", err
	}
	v, err := e.newVisitor()
	if err != nil {
		return nil, "", err
	}
	answer, err := v.negotiate(ctx, offer, codecs)
	if err != nil {
		v.Close()
		return nil, "", err
	}
	return v, answer, nil
}

// CheckVisitorOffer reads a browser caller's offer as AnswerVisitor
// does, making nothing of it: EINVALID for one it would refuse (it does
// not parse, has no audio, or no codec we carry).
func CheckVisitorOffer(offer string) error {
	_, err := offeredAudio(offer)
	return err
}

// newVisitor makes a caller's PeerConnection and its leg, not yet
// negotiated.
func (e *Engine) newVisitor() (*Visitor, error) {
	pc, err := e.api.NewPeerConnection(e.conf)
	if err != nil {
		return nil, fmt.Errorf("webrtc: peer connection: %w", err)
	}
	v := &Visitor{pc: pc, state: VisitorWaiting, events: make(chan sb.LegEvent, 8),
		connected: make(chan struct{}), failed: make(chan struct{}), release: e.opened()}
	v.port = &port{pc: pc, track: &track{prefer: []string{"opus", "PCMU", "PCMA"}}, rx: e.rx}
	var connOnce, failOnce sync.Once
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			connOnce.Do(func() { close(v.connected) })
		case webrtc.PeerConnectionStateFailed:
			failOnce.Do(func() { close(v.failed) })
			v.emit(sb.LegEvent{Kind: sb.LegMediaTimeout, Reason: "the visitor's ICE or DTLS connection failed"})
		case webrtc.PeerConnectionStateClosed:
			// Ours (emit ignores it then), or the visitor's page closed
			// the connection without deleting the session.
			failOnce.Do(func() { close(v.failed) })
			v.Leave()
		}
	})
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if t.Kind() == webrtc.RTPCodecTypeAudio {
			v.port.readLoop(t)
		}
	})
	return v, nil
}

func (v *Visitor) negotiate(ctx context.Context, offer string, codecs []webrtc.RTPCodecParameters) (string, error) {
	if err := v.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", sb.Errorf(sb.EINVALID, "the SDP offer was not accepted: %v", err)
	}
	// The offer made an audio transceiver; our answer puts Opus first on
	// it, so that is what the browser sends when it offered Opus.
	for _, tr := range v.pc.GetTransceivers() {
		if tr.Kind() == webrtc.RTPCodecTypeAudio {
			if err := tr.SetCodecPreferences(codecs); err != nil {
				return "", fmt.Errorf("webrtc: codec preferences: %w", err)
			}
			break
		}
	}
	// Our track joins that transceiver, so the answer is sendrecv on the
	// visitor's own m-line.
	sender, err := v.pc.AddTrack(v.port.track)
	if err != nil {
		return "", fmt.Errorf("webrtc: visitor track: %w", err)
	}
	go drainSender(sender)
	answer, err := v.pc.CreateAnswer(nil)
	if err != nil {
		return "", sb.Errorf(sb.EINVALID, "no answer to the SDP offer: %v", err)
	}
	local, err := v.setLocal(ctx, answer)
	if err != nil {
		return "", err
	}
	codec, err := answeredCodec(local)
	if err != nil {
		return "", err
	}
	v.port.track.mu.Lock()
	v.port.track.codec = codec // until the track is bound, which is at connection
	v.port.track.mu.Unlock()
	v.port.recvDTMF.Store(uint32(codec.DTMFType))
	return local, nil
}

// setLocal sets our description and returns it once every candidate is
// in it (no trickle: WHIP and the messengers take candidates in the SDP).
func (v *Visitor) setLocal(ctx context.Context, d webrtc.SessionDescription) (string, error) {
	gathered := webrtc.GatheringCompletePromise(v.pc)
	if err := v.pc.SetLocalDescription(d); err != nil {
		return "", fmt.Errorf("webrtc: local description: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return v.pc.LocalDescription().SDP, nil
}

// drainSender reads a sender's RTCP so the interceptors see receiver
// reports; it ends when the PeerConnection closes.
func drainSender(s *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := s.Read(buf); err != nil {
			return
		}
	}
}

// offeredAudio returns what of ours the offer's audio section offers,
// best first: Opus, G.711, then telephone-event. An offer with no audio
// codec we carry is EINVALID.
func offeredAudio(offer string) ([]webrtc.RTPCodecParameters, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(offer); err != nil {
		return nil, sb.Errorf(sb.EINVALID, "the SDP offer does not parse: %v", err)
	}
	for _, m := range sd.MediaDescriptions {
		if m.MediaName.Media != "audio" {
			continue
		}
		offered := map[string]bool{}
		for _, f := range m.MediaName.Formats {
			if c, err := sd.GetCodecForPayloadType(pt(f)); err == nil {
				offered[strings.ToLower(fmt.Sprintf("%s/%d", c.Name, c.ClockRate))] = true
			}
		}
		var ours []webrtc.RTPCodecParameters
		audio := false
		for _, c := range []webrtc.RTPCodecParameters{opus, pcmu, pcma, telephoneEvent, telephoneEvent48} {
			if offered[strings.ToLower(fmt.Sprintf("%s/%d", strings.TrimPrefix(c.MimeType, "audio/"), c.ClockRate))] {
				ours = append(ours, c)
				audio = audio || c.MimeType != telephoneEvent.MimeType
			}
		}
		if !audio {
			return nil, sb.Errorf(sb.EINVALID, "no common codec: the offer's audio has no Opus, PCMU or PCMA, and switchboard does not transcode")
		}
		return ours, nil
	}
	return nil, sb.Errorf(sb.EINVALID, "the SDP offer has no audio")
}

// answeredCodec is the audio codec our answer chose, with telephone-event.
func answeredCodec(answer string) (sb.Codec, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(answer); err != nil {
		return sb.Codec{}, fmt.Errorf("webrtc: our answer: %w", err)
	}
	var c sb.Codec
	events := map[uint32]uint8{}
	for _, m := range sd.MediaDescriptions {
		if m.MediaName.Media != "audio" {
			continue
		}
		for _, f := range m.MediaName.Formats {
			rc, err := sd.GetCodecForPayloadType(pt(f))
			if err != nil {
				continue
			}
			switch name := audioCodecName(rc.Name); {
			case c.Name == "" && name != "":
				c.Name, c.PayloadType, c.ClockRate = name, rc.PayloadType, uint32(rc.ClockRate)
			case strings.EqualFold(rc.Name, "telephone-event"):
				events[uint32(rc.ClockRate)] = rc.PayloadType
			}
		}
	}
	c.DTMFType = events[c.ClockRate]
	if c.Name == "" {
		return sb.Codec{}, sb.Errorf(sb.EINVALID, "no common codec with the visitor's offer")
	}
	return c, nil
}

// audioCodecName is our name for an SDP encoding name we carry, or "".
func audioCodecName(encoding string) string {
	switch {
	case strings.EqualFold(encoding, "opus"):
		return "opus"
	case strings.EqualFold(encoding, "PCMU"), strings.EqualFold(encoding, "PCMA"):
		return strings.ToUpper(encoding)
	}
	return ""
}

func pt(format string) uint8 {
	n, _ := strconv.ParseUint(format, 10, 8)
	return uint8(n)
}

// State says where the call stands for the visitor, and why it ended.
func (v *Visitor) State() (state, reason string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.state, v.reason
}

// Answered reports whether an operator ever took the call.
func (v *Visitor) Answered() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.answered
}

// Leave is the visitor hanging up: before an operator answered, it is the
// caller giving up (as a SIP CANCEL); after, the caller's BYE.
func (v *Visitor) Leave() {
	v.mu.Lock()
	kind := sb.LegCanceled
	if v.answered {
		kind = sb.LegHungUp
	}
	v.mu.Unlock()
	v.emit(sb.LegEvent{Kind: kind, Reason: "the visitor hung up"})
}

// Emit delivers an event the caller's signalling reported (a messenger's
// webhook: the far end rang, answered, refused or hung up); after Close
// it is dropped.
func (v *Visitor) Emit(e sb.LegEvent) { v.emit(e) }

func (v *Visitor) emit(e sb.LegEvent) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return
	}
	select {
	case v.events <- e:
	default: // call control is behind by eight events: it has this one's kind already
	}
}

func (v *Visitor) end(reason string) {
	v.mu.Lock()
	if v.state != VisitorEnded {
		v.state, v.reason = VisitorEnded, reason
	}
	v.mu.Unlock()
	v.Close()
}

// Ring has nothing to send: the visitor's page shows it is waiting.
func (v *Visitor) Ring(context.Context) error { return nil }

// Answer returns once the visitor's media is connected.
func (v *Visitor) Answer(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	select {
	case <-v.connected:
	case <-v.failed:
		return errors.New("webrtc: the visitor's connection failed")
	case <-ctx.Done():
		return fmt.Errorf("webrtc: the visitor's connection: %w", ctx.Err())
	}
	v.mu.Lock()
	v.answered, v.state = true, VisitorAnswered
	v.mu.Unlock()
	return nil
}

// Reject ends an unanswered call; the visitor's page reads the reason.
func (v *Visitor) Reject(_ context.Context, _ int, reason string) error {
	v.end(reason)
	return nil
}

// Hangup ends an answered call.
func (v *Visitor) Hangup(_ context.Context, reason string) error {
	v.end(reason)
	return nil
}

// Hold stops our audio toward the visitor, or resumes it. WHIP has no
// renegotiation: the visitor's own audio keeps arriving.
func (v *Visitor) Hold(_ context.Context, held bool) error {
	v.held.Store(held)
	return nil
}

// Events delivers the visitor hanging up and connection failures.
func (v *Visitor) Events() <-chan sb.LegEvent { return v.events }

// Media is the visitor's audio path.
func (v *Visitor) Media() sb.MediaPort { return visitorPort{v.port, &v.held} }

// Close ends the PeerConnection; it is safe to call more than once.
func (v *Visitor) Close() error {
	var err error
	v.closeOnce.Do(func() {
		v.mu.Lock()
		v.closed = true
		v.state = VisitorEnded
		close(v.events)
		v.mu.Unlock()
		err = v.pc.Close()
		v.release()
	})
	return err
}

// SIPTrace is empty: a visitor's call has no SIP messages.
func (v *Visitor) SIPTrace() []sb.SIPMessage { return nil }

// visitorPort is the visitor's port, silent toward them while held.
type visitorPort struct {
	*port
	held *atomic.Bool
}

func (p visitorPort) WriteRTP(pkt []byte) error {
	if p.held.Load() {
		return nil
	}
	return p.port.WriteRTP(pkt)
}
