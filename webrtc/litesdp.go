package webrtc

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"hash"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	sb "github.com/switchboard-voice/switchboard"
)

// liteCNAME is the RTCP canonical name of every operator stream we send:
// each operator's connection carries one stream.
const liteCNAME = "switchboard"

// offeredCodecs are the audio codecs of an operator's offer, in order.
var offeredCodecs = []webrtc.RTPCodecParameters{pcmu, pcma, opus, telephoneEvent, telephoneEvent48}

// liteOffer is the SDP offer of an ICE-lite session: one sendrecv audio
// section with rtcp-mux, our ICE credentials and certificate fingerprint,
// and actpass so the browser may take either DTLS role (RFC 8842). It is
// complete: an ICE-lite agent has only its host candidates, all known at
// once, so they are in the offer with a=end-of-candidates (RFC 8840), the
// first as the default destination in m= and c=, and a client that does
// not trickle connects as well as one that does.
func liteOffer(id uint64, ufrag, pwd, fingerprint string, ssrc uint32, addrs []netip.AddrPort) string {
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=- %d 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", id)
	b.WriteString("a=group:BUNDLE 0\r\na=ice-lite\r\na=msid-semantic: WMS switchboard\r\n")
	port, conn := uint16(9), "IN IP4 0.0.0.0"
	if len(addrs) > 0 {
		port, conn = addrs[0].Port(), connectionAddress(addrs[0].Addr())
	}
	fmt.Fprintf(&b, "m=audio %d UDP/TLS/RTP/SAVPF", port)
	for _, c := range offeredCodecs {
		fmt.Fprintf(&b, " %d", c.PayloadType)
	}
	fmt.Fprintf(&b, "\r\nc=%s\r\na=rtcp:%d %s\r\n", conn, port, conn)
	for i, a := range addrs {
		fmt.Fprintf(&b, "a=%s\r\n", hostCandidate(i, a))
	}
	b.WriteString("a=end-of-candidates\r\n")
	fmt.Fprintf(&b, "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\n", ufrag, pwd)
	fmt.Fprintf(&b, "a=fingerprint:sha-256 %s\r\na=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\n", fingerprint)
	for _, c := range offeredCodecs {
		name := strings.TrimPrefix(c.MimeType, "audio/")
		if c.Channels > 1 {
			fmt.Fprintf(&b, "a=rtpmap:%d %s/%d/%d\r\n", c.PayloadType, name, c.ClockRate, c.Channels)
		} else {
			fmt.Fprintf(&b, "a=rtpmap:%d %s/%d\r\n", c.PayloadType, name, c.ClockRate)
		}
		if c.SDPFmtpLine != "" {
			fmt.Fprintf(&b, "a=fmtp:%d %s\r\n", c.PayloadType, c.SDPFmtpLine)
		}
	}
	fmt.Fprintf(&b, "a=ssrc:%d cname:%s\r\na=ssrc:%d msid:switchboard audio\r\na=msid:switchboard audio\r\n", ssrc, liteCNAME, ssrc)
	return b.String()
}

// connectionAddress is addr as an SDP connection address (RFC 8866 §5.7).
func connectionAddress(addr netip.Addr) string {
	if addr.Is4() || addr.Is4In6() {
		return "IN IP4 " + addr.Unmap().String()
	}
	return "IN IP6 " + addr.String()
}

// hostCandidate is the candidate line of our one host candidate on addr.
// Its priority follows RFC 8445 §5.1.2.1 (type preference 126); the local
// preference orders addresses as listed.
func hostCandidate(i int, addr netip.AddrPort) string {
	prio := 126<<24 | (65535-i)<<8 | 255
	return fmt.Sprintf("candidate:%d 1 udp %d %s %d typ host", i+1, prio, addr.Addr(), addr.Port())
}

// liteAnswer is what a browser's answer says that an ICE-lite session
// needs.
type liteAnswer struct {
	ufrag, pwd string
	// fingerprint checks the DTLS certificate the browser shows.
	fingerprint func(cert []byte) bool
	dtlsClient  bool // setup:passive: we connect
	codecs      []webrtc.RTPCodecParameters
}

// parseLiteAnswer reads the answer to our offer. What an ICE-lite session
// cannot work with is an EINVALID error saying what.
func parseLiteAnswer(text string) (*liteAnswer, error) {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(text); err != nil {
		return nil, sb.Errorf(sb.EINVALID, "the SDP answer was not accepted: %v", err)
	}
	var m *sdp.MediaDescription
	for _, md := range d.MediaDescriptions {
		if md.MediaName.Media == "audio" {
			m = md
			break
		}
	}
	if m == nil || m.MediaName.Port.Value == 0 {
		return nil, sb.Errorf(sb.EINVALID, "the SDP answer was not accepted: it has no audio")
	}
	attr := func(key string) string {
		if v, ok := m.Attribute(key); ok {
			return v
		}
		v, _ := d.Attribute(key)
		return v
	}
	a := &liteAnswer{ufrag: attr("ice-ufrag"), pwd: attr("ice-pwd")}
	if a.ufrag == "" || a.pwd == "" {
		return nil, sb.Errorf(sb.EINVALID, "the SDP answer was not accepted: no ICE credentials")
	}
	var err error
	if a.fingerprint, err = parseFingerprint(attr("fingerprint")); err != nil {
		return nil, err
	}
	switch attr("setup") {
	case "active", "":
	case "passive":
		a.dtlsClient = true
	default:
		return nil, sb.Errorf(sb.EINVALID, "the SDP answer was not accepted: setup must be active or passive")
	}
	a.codecs = answerCodecs(m)
	return a, nil
}

// parseFingerprint returns a check of a certificate against an SDP
// fingerprint attribute (RFC 8122): "sha-256 AB:CD:…".
func parseFingerprint(v string) (func([]byte) bool, error) {
	alg, value, ok := strings.Cut(strings.TrimSpace(v), " ")
	var h func() hash.Hash
	switch strings.ToLower(alg) {
	case "sha-256":
		h = sha256.New
	case "sha-384":
		h = sha512.New384
	case "sha-512":
		h = sha512.New
	}
	want, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(value), ":", ""))
	if !ok || h == nil || err != nil || len(want) != h().Size() {
		return nil, sb.Errorf(sb.EINVALID, "the SDP answer was not accepted: no usable certificate fingerprint (sha-256, sha-384 or sha-512)")
	}
	return func(cert []byte) bool {
		d := h()
		d.Write(cert)
		return subtle.ConstantTimeCompare(d.Sum(nil), want) == 1
	}, nil
}

// answerCodecs are the payload formats of m with their rtpmap and fmtp;
// the static G.711 types need no rtpmap.
func answerCodecs(m *sdp.MediaDescription) []webrtc.RTPCodecParameters {
	var out []webrtc.RTPCodecParameters
	for _, f := range m.MediaName.Formats {
		n, err := strconv.ParseUint(f, 10, 7)
		if err != nil {
			continue
		}
		c := webrtc.RTPCodecParameters{PayloadType: webrtc.PayloadType(n)}
		name, rate, channels := "", uint64(0), uint64(0)
		for _, a := range m.Attributes {
			switch {
			case a.Key == "rtpmap" && strings.HasPrefix(a.Value, f+" "):
				parts := strings.Split(strings.TrimPrefix(a.Value, f+" "), "/")
				name = parts[0]
				if len(parts) > 1 {
					rate, _ = strconv.ParseUint(parts[1], 10, 32)
				}
				if len(parts) > 2 {
					channels, _ = strconv.ParseUint(parts[2], 10, 16)
				}
			case a.Key == "fmtp" && strings.HasPrefix(a.Value, f+" "):
				c.SDPFmtpLine = strings.TrimPrefix(a.Value, f+" ")
			}
		}
		if name == "" {
			switch n {
			case 0:
				name, rate = "PCMU", 8000
			case 8:
				name, rate = "PCMA", 8000
			default:
				continue
			}
		}
		c.MimeType, c.ClockRate, c.Channels = "audio/"+name, uint32(rate), uint16(channels)
		out = append(out, c)
	}
	return out
}
