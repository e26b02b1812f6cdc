// Package webrtc is the browser side of switchboard: one media session
// per operator shift (ICE-lite with DTLS-SRTP on the shared UDP port, or a
// pion PeerConnection with a port of its own), whose audio is the
// operator's switchboard.MediaPort for call after call; and browser
// callers' pion PeerConnections.
package webrtc

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/internal/rxstamp"
)

// Config tunes the WebRTC side.
type Config struct {
	// PublicIP replaces host candidates' addresses behind 1:1 NAT.
	PublicIP netip.Addr
	// Ports is the UDP range for ICE when every PeerConnection has its
	// own socket (UDPPort < 0); zero lets the system choose.
	Ports sb.PortRange
	// UDPPort is the one UDP port every browser's media uses (operators'
	// ICE-lite sessions, and pion's ICE UDP mux for the rest): 0 takes the
	// first free port of Ports (or one the system picks when Ports is
	// zero); negative gives each PeerConnection its own socket from Ports
	// instead, operators' too.
	UDPPort int
	// ICEServers are STUN/TURN servers for the server side's pion
	// PeerConnections (browser callers, and operators with a port each);
	// operators' ICE-lite sessions gather none (PublicIP behind NAT).
	ICEServers []sb.ICEServer
	// LoopbackOnly gathers 127.0.0.1 candidates only: tests, and a
	// browser on the same machine.
	LoopbackOnly bool
	Logger       *slog.Logger
}

// Engine makes operator media sessions.
type Engine struct {
	api      *webrtc.API
	conf     webrtc.Configuration
	log      *slog.Logger
	pionLogs logging.LoggerFactory
	open     atomic.Int64   // connections open: operators' and visitors'
	mux      *udpMux        // nil: a socket per PeerConnection
	rx       *rxstamp.Table // receive times of what the mux read
	// Operators' ICE-lite sessions on the shared port (nil without it).
	lite     *liteMux
	cert     *liteCert
	publicIP netip.Addr
	stop     chan struct{} // ends the sessions' timers
}

// Session is one operator's media connection for a shift: ICE-lite with
// DTLS-SRTP on the shared port, or a pion PeerConnection with a socket of
// its own when there is no shared port.
type Session interface {
	OnICECandidate(fn func(sb.ICECandidate))
	OnConnectionStateChange(fn func(state string))
	CreateOffer(ctx context.Context) (sdp string, err error)
	SetAnswer(sdp string) error
	AddICECandidate(c sb.ICECandidate) error
	Media() sb.MediaPort
	Close() error
}

// PortsInUse says how many UDP ports the PeerConnections hold: the one
// shared port, or one for each PeerConnection without it.
func (e *Engine) PortsInUse() int64 {
	if e.mux != nil {
		return 1
	}
	return e.open.Load()
}

// opened counts a PeerConnection open and returns what its Close calls.
func (e *Engine) opened() func() {
	e.open.Add(1)
	return func() { e.open.Add(-1) }
}

// telephoneEventPT is the payload type we offer for RFC 4733 events.
const telephoneEventPT = 101

// Audio codecs as the engine registers them: G.711 for calls from most
// trunks, Opus for browsers and trunks that speak it over SRTP. Nothing
// is transcoded: a call is carried in its caller's codec.
var (
	pcmu = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1}, PayloadType: 0}
	pcma = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000, Channels: 1}, PayloadType: 8}
	opus = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
		SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111}
	telephoneEvent = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "audio/telephone-event", ClockRate: 8000,
		SDPFmtpLine: "0-16"}, PayloadType: telephoneEventPT}
	// telephoneEvent48 is telephone-event at Opus's clock rate, which a
	// browser sends its keys with during an Opus call.
	telephoneEvent48 = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "audio/telephone-event", ClockRate: 48000,
		SDPFmtpLine: "0-16"}, PayloadType: 110}
)

// NewEngine returns an engine that offers PCMU, PCMA, Opus and
// telephone-event. An operator's PeerConnection negotiates them all once
// and carries each call in its caller's codec.
func NewEngine(c Config) (*Engine, error) {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	m := &webrtc.MediaEngine{}
	for _, codec := range []webrtc.RTPCodecParameters{pcmu, pcma, opus, telephoneEvent, telephoneEvent48} {
		if err := m.RegisterCodec(codec, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, fmt.Errorf("webrtc: register %s: %w", codec.MimeType, err)
		}
	}
	// Only RTCP sender reports (RFC 3550 §6.4.1). pion's defaults are
	// for video and cost an audio-only operator per packet and per
	// stream: NACK buffers, transport-wide congestion control, simulcast
	// headers, the stats interceptor (an allocation per packet), and
	// receiver reports (one more), which the operator page does not use:
	// it reads its own inbound statistics.
	ir := &interceptor.Registry{}
	sr, err := report.NewSenderInterceptor()
	if err != nil {
		return nil, fmt.Errorf("webrtc: interceptors: %w", err)
	}
	ir.Add(sr)
	logs := newPionLogs(c.Logger)
	se := webrtc.SettingEngine{LoggerFactory: logs}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if c.LoopbackOnly {
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	e := &Engine{log: c.Logger, pionLogs: logs, publicIP: c.PublicIP}
	if c.UDPPort >= 0 {
		if e.cert, err = newLiteCert(); err != nil {
			return nil, err
		}
		e.rx = new(rxstamp.Table)
		e.lite = newLiteMux()
		if e.mux, err = openUDPMux(c.UDPPort, c.Ports, c.LoopbackOnly, e.rx, e.lite); err != nil {
			return nil, err
		}
		e.stop = make(chan struct{})
		go e.lite.tick(liteTick, e.stop)
		se.SetICEUDPMux(e.mux.mux)
		e.log.Info("operators' media on one UDP port", "port", e.mux.port)
		if e.mux.queue < muxReadBuffer {
			e.log.Warn("the operators' media port's receive queue is smaller than asked: raise net.core.rmem_max (docs/operations.md)",
				"bytes", e.mux.queue, "asked", muxReadBuffer)
		}
	} else if !c.Ports.IsZero() {
		if err := se.SetEphemeralUDPPortRange(c.Ports.Min, c.Ports.Max); err != nil {
			return nil, fmt.Errorf("webrtc: port range: %w", err)
		}
	}
	if c.PublicIP.IsValid() {
		// Host candidates carry the public address instead of the local one.
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{External: []string{c.PublicIP.String()},
			AsCandidateType: webrtc.ICECandidateTypeHost, Mode: webrtc.ICEAddressRewriteReplace}); err != nil {
			e.Close() // the shared port, if opened
			return nil, fmt.Errorf("webrtc: public address: %w", err)
		}
	}
	e.api = webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	for _, s := range c.ICEServers {
		e.conf.ICEServers = append(e.conf.ICEServers, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return e, nil
}

// NewSession returns a session with one sendrecv audio stream, ready to
// make an offer.
func (e *Engine) NewSession() (Session, error) {
	if e.lite != nil {
		return e.newLiteSession(), nil
	}
	pc, err := e.api.NewPeerConnection(e.conf)
	if err != nil {
		return nil, fmt.Errorf("webrtc: peer connection: %w", err)
	}
	s := &pcSession{pc: pc, log: e.log, track: &track{prefer: []string{"PCMU", "PCMA", "opus"}}}
	s.port = &port{pc: pc, track: s.track, rx: e.rx}
	s.transceiver, err = pc.AddTransceiverFromTrack(s.track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv})
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("webrtc: transceiver: %w", err)
	}
	go s.drainRTCP(s.transceiver.Sender())
	s.release = e.opened()
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if t.Kind() == webrtc.RTPCodecTypeAudio {
			s.port.readLoop(t)
		}
	})
	return s, nil
}

// UDPPort is the one UDP port operators' ICE uses, or 0 when each
// PeerConnection has its own socket.
func (e *Engine) UDPPort() int {
	if e.mux == nil {
		return 0
	}
	return e.mux.port
}

// candidateAddrs are the addresses of our host candidates on the shared
// port: the public address alone when one is set (1:1 NAT).
func (e *Engine) candidateAddrs() []netip.AddrPort {
	if e.publicIP.IsValid() {
		return []netip.AddrPort{netip.AddrPortFrom(e.publicIP, uint16(e.mux.port))}
	}
	return e.mux.addrs
}

// Close releases the shared UDP port. Sessions still open lose their
// media.
func (e *Engine) Close() error {
	if e.mux == nil {
		return nil
	}
	select {
	case <-e.stop:
	default:
		close(e.stop)
	}
	return e.mux.mux.Close()
}
