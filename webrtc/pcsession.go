package webrtc

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/internal/rxstamp"
	"github.com/switchboard-voice/switchboard/media"
)

// pcSession is one operator's pion PeerConnection for a shift, used
// when each has a socket of its own (no shared port to run ICE-lite on).
type pcSession struct {
	pc          *webrtc.PeerConnection
	transceiver *webrtc.RTPTransceiver
	track       *track
	port        *port
	log         *slog.Logger
	closeOnce   sync.Once
	release     func() // counts it closed

	mu      sync.Mutex
	early   []webrtc.ICECandidateInit // candidates that came before the answer
	haveAns bool
}

// OnICECandidate registers fn for each local candidate as it is gathered.
func (s *pcSession) OnICECandidate(fn func(sb.ICECandidate)) {
	s.pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		init := c.ToJSON()
		fn(sb.ICECandidate{Candidate: init.Candidate, SDPMid: init.SDPMid, SDPMLineIndex: init.SDPMLineIndex, UsernameFragment: init.UsernameFragment})
	})
}

// OnConnectionStateChange registers fn for the PeerConnection's state:
// "new", "connecting", "connected", "disconnected", "failed", "closed".
func (s *pcSession) OnConnectionStateChange(fn func(state string)) {
	s.pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) { fn(st.String()) })
}

// CreateOffer makes and applies the server's offer; candidates trickle
// after it through OnICECandidate.
func (s *pcSession) CreateOffer(ctx context.Context) (string, error) {
	offer, err := s.pc.CreateOffer(nil)
	if err != nil {
		return "", fmt.Errorf("webrtc: offer: %w", err)
	}
	if err := s.pc.SetLocalDescription(offer); err != nil {
		return "", fmt.Errorf("webrtc: local description: %w", err)
	}
	return s.pc.LocalDescription().SDP, nil
}

// SetAnswer applies the client's answer. A bad answer is EINVALID.
func (s *pcSession) SetAnswer(sdp string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		return sb.Errorf(sb.EINVALID, "the SDP answer was not accepted: %v", err)
	}
	s.haveAns = true
	for _, c := range s.early {
		if err := s.pc.AddICECandidate(c); err != nil {
			s.log.Debug("early ICE candidate refused", "err", err)
		}
	}
	s.early = nil
	for _, c := range s.transceiver.Receiver().GetParameters().Codecs {
		if strings.EqualFold(c.MimeType, "audio/telephone-event") {
			s.port.recvDTMF.Store(uint32(c.PayloadType))
			break
		}
	}
	return nil
}

// AddICECandidate adds a trickled client candidate. One that arrives
// before the answer (signalling may overtake it) is kept until then.
func (s *pcSession) AddICECandidate(c sb.ICECandidate) error {
	init := webrtc.ICECandidateInit{Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.haveAns {
		if len(s.early) >= 64 {
			return sb.Errorf(sb.EINVALID, "too many ICE candidates before the answer")
		}
		s.early = append(s.early, init)
		return nil
	}
	if err := s.pc.AddICECandidate(init); err != nil {
		return sb.Errorf(sb.EINVALID, "the ICE candidate was not accepted: %v", err)
	}
	return nil
}

// Media is the operator's audio path.
func (s *pcSession) Media() sb.MediaPort { return s.port }

// Close ends the PeerConnection.
func (s *pcSession) Close() error {
	var err error
	s.closeOnce.Do(func() {
		err = s.pc.Close()
		s.release()
	})
	return err
}

// drainRTCP reads the sender's RTCP so the interceptors see receiver
// reports; it ends when the PeerConnection closes.
func (s *pcSession) drainRTCP(sender *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := sender.Read(buf); err != nil {
			return
		}
	}
}

// track is our outgoing audio track. pion's TrackLocalStaticRTP stamps
// every packet with one payload type; this one keeps the packet's own, so
// RFC 4733 events reach the browser beside the audio, and a call in Opus
// can follow one in G.711 on the same stream.
type track struct {
	prefer []string // codec names, the first negotiated one is used until told otherwise

	mu     sync.RWMutex
	ws     webrtc.TrackLocalWriter
	ssrc   uint32
	codecs map[string]negotiatedCodec // what the far end took, by name
	codec  sb.Codec                   // the one in use
}

type negotiatedCodec struct {
	sb.Codec
	params webrtc.RTPCodecParameters
}

// negotiatedCodecs maps the audio codecs in params by name, each with the
// telephone-event of its clock rate.
func negotiatedCodecs(params []webrtc.RTPCodecParameters) map[string]negotiatedCodec {
	events := map[uint32]uint8{}
	out := map[string]negotiatedCodec{}
	for _, p := range params {
		if strings.EqualFold(p.MimeType, "audio/telephone-event") {
			if _, ok := events[p.ClockRate]; !ok {
				events[p.ClockRate] = uint8(p.PayloadType)
			}
			continue
		}
		name := audioCodecName(strings.TrimPrefix(p.MimeType, "audio/"))
		if name == "" {
			continue
		}
		if _, ok := out[name]; !ok {
			out[name] = negotiatedCodec{sb.Codec{Name: name, PayloadType: uint8(p.PayloadType), ClockRate: p.ClockRate}, p}
		}
	}
	for name, c := range out {
		c.DTMFType = events[c.ClockRate]
		out[name] = c
	}
	return out
}

func (t *track) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	codecs := negotiatedCodecs(ctx.CodecParameters())
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := codecs[t.codec.Name]
	for _, name := range t.prefer {
		if ok {
			break
		}
		c, ok = codecs[name]
	}
	if !ok {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	t.ws, t.ssrc, t.codecs, t.codec = ctx.WriteStream(), uint32(ctx.SSRC()), codecs, c.Codec
	return c.params, nil
}

func (t *track) Unbind(webrtc.TrackLocalContext) error {
	t.mu.Lock()
	t.ws = nil
	t.mu.Unlock()
	return nil
}

func (t *track) ID() string                { return "audio" }
func (t *track) RID() string               { return "" }
func (t *track) StreamID() string          { return "switchboard" }
func (t *track) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeAudio }

// port is the session's switchboard.MediaPort.
type port struct {
	pc       *webrtc.PeerConnection
	track    *track
	sink     atomic.Pointer[func([]byte)]
	recvDTMF atomic.Uint32

	rx   *rxstamp.Table // receive times the UDP mux noted; nil: none
	rxAt int64          // of the packet being handed to the sink; read loop only

	wmu sync.Mutex // guards hdr: two bridges may overlap for a packet
	hdr rtp.Header // the packet being sent, parsed without allocating
}

var _ sb.ReceiveClock = (*port)(nil)

// ReceivedAt is when the packet the sink is being handed reached the
// host: the kernel's timestamp of the datagram that carried it to the UDP
// mux, or 0 when unknown (a socket per PeerConnection, or the mux's slot
// was taken by another packet meanwhile).
func (p *port) ReceivedAt() int64 { return p.rxAt }

var _ sb.LinkReporter = (*port)(nil)

// Link reports the ICE and DTLS states and the selected candidate pair.
func (p *port) Link() sb.LinkInfo {
	l := sb.LinkInfo{ICE: p.pc.ICEConnectionState().String(), DTLS: "new"}
	for _, tr := range p.pc.GetTransceivers() {
		dtls := tr.Sender().Transport()
		if dtls == nil {
			continue
		}
		l.DTLS = dtls.State().String()
		if pair, err := dtls.ICETransport().GetSelectedCandidatePair(); err == nil && pair != nil {
			l.Pair = candidate(pair.Local) + " ↔ " + candidate(pair.Remote)
		}
		break
	}
	return l
}

func candidate(c *webrtc.ICECandidate) string {
	if c == nil {
		return "?"
	}
	return fmt.Sprintf("%s %s %s:%d", c.Typ, c.Protocol, c.Address, c.Port)
}

// Codec is the audio codec in use; DTMFType is telephone-event's payload
// type at its clock rate, the same both ways in what browsers answer.
func (p *port) Codec() sb.Codec {
	p.track.mu.RLock()
	defer p.track.mu.RUnlock()
	c := p.track.codec
	if c.Name == "" {
		c = sb.PCMU // not negotiated yet
	}
	if c.DTMFType == 0 && c.IsG711() {
		c.DTMFType = uint8(p.recvDTMF.Load())
	}
	return c
}

var _ sb.CodecChooser = (*port)(nil)

// CanUse reports whether the browser took the named codec.
func (p *port) CanUse(name string) bool {
	p.track.mu.RLock()
	defer p.track.mu.RUnlock()
	_, ok := p.track.codecs[name]
	return ok
}

// UseCodec makes the named codec the one sent and expected from now on.
// The browser is told separately, with the call (it switches its sender).
func (p *port) UseCodec(name string) bool {
	p.track.mu.Lock()
	defer p.track.mu.Unlock()
	c, ok := p.track.codecs[name]
	if ok {
		p.track.codec = c.Codec
	}
	return ok
}

func (p *port) SetSink(fn func([]byte)) {
	if fn == nil {
		p.sink.Store(nil)
		return
	}
	p.sink.Store(&fn)
}

// WriteRTP sends pkt to the browser under the track's SSRC. It changes
// the SSRC in pkt, which the bridge allows.
func (p *port) WriteRTP(pkt []byte) error {
	p.track.mu.RLock()
	defer p.track.mu.RUnlock()
	if p.track.ws == nil || len(pkt) < 12 {
		return nil // not negotiated yet: nothing to send on
	}
	media.SetSSRC(pkt, p.track.ssrc)
	// TrackLocalWriter.Write would parse pkt into a new rtp.Packet each
	// time; the header is parsed into one kept for the purpose instead.
	p.wmu.Lock()
	defer p.wmu.Unlock()
	n, err := p.hdr.Unmarshal(pkt)
	if err != nil {
		return nil // not RTP: nothing the browser could use
	}
	_, err = p.track.ws.WriteRTP(&p.hdr, pkt[n:])
	return err
}

func (p *port) readLoop(t *webrtc.TrackRemote) {
	buf := make([]byte, 1500)
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			return
		}
		if p.rx != nil && n >= 12 {
			p.rxAt = p.rx.Get(binary.BigEndian.Uint32(buf[8:12]), binary.BigEndian.Uint16(buf[2:4]))
		}
		if fn := p.sink.Load(); fn != nil {
			(*fn)(buf[:n])
		}
	}
}
