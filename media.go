package switchboard

import (
	"strconv"
	"strings"
)

// Codec is the audio format negotiated on one leg.
type Codec struct {
	Name        string // "PCMU", "PCMA" or "opus"
	PayloadType uint8  // RTP payload type of the audio
	ClockRate   uint32 // samples per second
	// DTMFType is the RTP payload type of telephone-event (RFC 4733) on
	// this leg, 0 if the far end did not negotiate it.
	DTMFType uint8
}

// Static G.711 codecs (RFC 3551), and Opus (RFC 7587) at the payload type
// browsers use for it. Opus is always opus/48000/2 in SDP, whatever the
// channels actually sent.
var (
	PCMU = Codec{Name: "PCMU", PayloadType: 0, ClockRate: 8000}
	PCMA = Codec{Name: "PCMA", PayloadType: 8, ClockRate: 8000}
	Opus = Codec{Name: "opus", PayloadType: 111, ClockRate: 48000}
)

// IsG711 reports whether c is PCMU or PCMA.
func (c Codec) IsG711() bool { return c.Name == "PCMU" || c.Name == "PCMA" }

// Bridgeable reports whether audio in codec a can reach a leg speaking b
// without transcoding: the same codec, or the two G.711 laws, which the
// bridge converts sample by sample. Opus is carried unchanged or not at
// all.
func Bridgeable(a, b Codec) bool {
	return a.Name == b.Name || a.IsG711() && b.IsG711()
}

// CodecChooser is a MediaPort that negotiated several codecs on one
// stream, as an operator's shift-long PeerConnection does, and is told
// which one each call uses.
type CodecChooser interface {
	// CanUse reports whether the far end negotiated the named codec.
	CanUse(name string) bool
	// UseCodec makes the named codec the port's from now on, and reports
	// false, changing nothing, when the far end did not negotiate it.
	UseCodec(name string) bool
}

// MediaPort is one leg's audio path as the bridge sees it: RTP packets in
// and out, in the leg's negotiated codec.
//
// Incoming packets are pushed: the port's own read loop calls the sink with
// each packet. The sink owns the slice only for the duration of the call and
// may modify it in place; it must not block. A port with no sink discards
// what it reads.
type MediaPort interface {
	Codec() Codec
	// SetSink replaces the function that receives incoming RTP packets;
	// nil detaches.
	SetSink(sink func(pkt []byte))
	// WriteRTP sends one RTP packet to the far end. It must not retain pkt.
	WriteRTP(pkt []byte) error
}

// ReceiveClock is a MediaPort that knows when each packet it delivers
// reached the host, so the delay the service adds can be measured from
// there.
type ReceiveClock interface {
	// ReceivedAt is the receive time, in Unix nanoseconds, of the packet
	// the sink is being called with (the kernel's timestamp where the
	// socket gives one), or 0 if unknown. It is valid only inside the
	// sink, on the port's read loop.
	ReceivedAt() int64
}

// LinkInfo is how a WebRTC leg's transport stands, for diagnosis.
type LinkInfo struct {
	ICE  string `json:"ice"`            // ICE connection state
	DTLS string `json:"dtls"`           // DTLS transport state
	Pair string `json:"pair,omitempty"` // the selected candidate pair: local ↔ remote
}

// LinkReporter is a MediaPort that can say how its transport stands.
type LinkReporter interface {
	Link() LinkInfo
}

// PortRange is an inclusive range of UDP ports for media sockets.
type PortRange struct {
	Min, Max uint16
}

// ParsePortRange parses "10000-20000". The empty string is the zero range,
// which lets the system choose.
func ParsePortRange(s string) (PortRange, error) {
	if s == "" {
		return PortRange{}, nil
	}
	lo, hi, ok := strings.Cut(s, "-")
	min, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
	max, err2 := strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
	if !ok || err1 != nil || err2 != nil || min == 0 || min > max {
		return PortRange{}, Errorf(EINVALID, "port range %q must look like 10000-20000 (low-high, 1..65535)", s)
	}
	return PortRange{Min: uint16(min), Max: uint16(max)}, nil
}

// IsZero reports whether the range is unset.
func (r PortRange) IsZero() bool { return r.Min == 0 && r.Max == 0 }

// ICEServer is a STUN or TURN server handed to browsers, in the shape of
// the WebRTC RTCIceServer dictionary.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// ICECandidate is a trickled ICE candidate, in the shape of the WebRTC
// RTCIceCandidateInit dictionary.
type ICECandidate struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid,omitempty"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex,omitempty"`
	UsernameFragment *string `json:"usernameFragment,omitempty"`
}
