package sip

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/sdp/v3"

	sb "github.com/switchboard-voice/switchboard"
)

// offer is what we take from a caller's SDP: where to send audio, in which
// codec, and which way.
type offer struct {
	Addr      netip.AddrPort // the caller's RTP address; unspecified IP when on hold the RFC 2543 way
	Codec     sb.Codec
	Direction string // sendrecv, sendonly, recvonly or inactive
	// Crypto is set when the stream is SRTP (RTP/SAVP): the first of its
	// crypto attributes we take.
	Crypto *crypto
	// ICE is set when the stream is DTLS-SRTP over ICE
	// (UDP/TLS/RTP/SAVP[F]); Proto is then the transport as offered.
	ICE   *iceParams
	Proto string
	// MLines are the description's m= lines, which an answer mirrors.
	MLines mlines
	// formats are the audio stream's payload types with their encodings
	// (lower case, "pcmu/8000"), for what a later offer may keep.
	formats map[uint8]string
}

// keeping is codec c as the audio stream offers it: the same encoding and
// clock rate, at the payload type the offer gives it (which may be
// another than before, RFC 3264 §8.3.2), with the offer's telephone-event
// at that rate; false when the offer does not have it.
func (o *offer) keeping(c sb.Codec) (sb.Codec, bool) {
	want := strings.ToLower(fmt.Sprintf("%s/%d", c.Name, c.ClockRate))
	if c.Name == "opus" {
		want += "/2"
	}
	kept, found := c, false
	for pt, name := range o.formats {
		if name == want || name == "" && (pt == 0 && c.Name == "PCMU" || pt == 8 && c.Name == "PCMA") {
			if !found || pt == c.PayloadType { // the same payload type as before, when the offer keeps it
				kept.PayloadType, found = pt, true
			}
		}
	}
	kept.DTMFType = 0
	event := fmt.Sprintf("telephone-event/%d", c.ClockRate)
	for pt, name := range o.formats {
		if name == event && (kept.DTMFType == 0 || pt == c.DTMFType) {
			kept.DTMFType = pt
		}
	}
	return kept, found
}

// held reports whether the caller put the call on hold.
func (o *offer) held() bool {
	return o.Direction == "sendonly" || o.Direction == "inactive" || o.blackholed()
}

// blackholed reports an RFC 2543 hold: a connection address of 0.0.0.0.
// With ICE the c= line is only the default candidate, and 0.0.0.0 there
// means none yet (RFC 8839 §4.2.1.2, WebRTC offers say so): the
// candidates are the addresses.
func (o *offer) blackholed() bool {
	return o.ICE == nil && o.Addr.Addr().IsUnspecified()
}

// errNoCodec is returned by parseOffer when the audio offer has no codec
// we take; the caller answers 488.
type errNoCodec struct{ offered string }

func (e errNoCodec) Error() string {
	return "no common codec: offered " + e.offered + ", we take PCMU, PCMA, and Opus over SRTP (SDES or DTLS-SRTP)"
}

// errAddressFormat is returned by parseOffer when the connection address
// is a name: RFC 4566 §5.7 allows a fully qualified domain name there, but
// a call's media is not worth a DNS lookup on its way in, so the offer is
// refused as one we cannot take (488), with Warning 301, incompatible
// network address formats (RFC 3261 §20.43).
type errAddressFormat struct{ addr string }

func (e errAddressFormat) Error() string {
	return fmt.Sprintf("the connection address %q is not an IP address: names are not resolved here", e.addr)
}

// notAcceptable reports whether a parseOffer error is about what the
// offer asks for (488), not how it is written (400).
func notAcceptable(err error) bool {
	var noCodec errNoCodec
	var noCrypto errNoCrypto
	var addr errAddressFormat
	return errors.As(err, &noCodec) || errors.As(err, &noCrypto) || errors.As(err, &addr)
}

// refusal is a request refused for the session it describes: the final
// response's code, its Warning's code (RFC 3261 §20.43) and why.
type refusal struct {
	code, warn int
	reason     string
}

// refused is the refusal of a description parseOffer could not take: 488
// for what it asks for, 400 for how it is written.
func refused(err error) *refusal {
	var addr errAddressFormat
	switch {
	case errors.As(err, &addr):
		return &refusal{code: 488, warn: warnAddressFormat, reason: err.Error()}
	case notAcceptable(err):
		return &refusal{code: 488, warn: warnMisc, reason: err.Error()}
	}
	return &refusal{code: 400, warn: warnMisc, reason: err.Error()}
}

// response is the final response that refuses req.
func (r *refusal) response(req *sip.Request) *sip.Response {
	return warnedRejection(req, r.code, r.warn, r.reason)
}

// parseOffer reads the first audio stream of an SDP offer and picks our
// codec: the caller's first choice among PCMU, PCMA and, on an SRTP
// stream (SDES or DTLS), Opus, plus telephone-event at that codec's clock rate when
// offered. Opus is carried unchanged to a browser, so it is taken only
// where the trunk keeps it private on the way (messenger platforms that
// call over SIP do); plain-RTP trunks get G.711.
func parseOffer(body []byte) (*offer, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(parsable(string(body))); err != nil {
		return nil, fmt.Errorf("malformed SDP: %w", err)
	}
	var audio *sdp.MediaDescription
	ml := mlines{lines: scanMLines(string(body))}
	for i, m := range sd.MediaDescriptions {
		if m.MediaName.Media == "audio" && m.MediaName.Port.Value != 0 {
			audio, ml.audio = m, i
			break
		}
	}
	if audio == nil {
		return nil, errNoCodec{offered: "no audio stream"}
	}
	if len(ml.lines) != len(sd.MediaDescriptions) {
		ml = mlines{} // not as the parser read it: our audio alone
	}
	conn := sd.ConnectionInformation
	if audio.ConnectionInformation != nil {
		conn = audio.ConnectionInformation
	}
	if conn == nil || conn.Address == nil {
		return nil, fmt.Errorf("malformed SDP: no connection address")
	}
	ip, err := netip.ParseAddr(conn.Address.Address)
	if err != nil {
		return nil, errAddressFormat{conn.Address.Address}
	}
	port := audio.MediaName.Port.Value
	if port <= 0 || port > 65535 {
		return nil, fmt.Errorf("malformed SDP: audio port %d", port)
	}
	var secure *crypto
	var ice *iceParams
	proto := strings.ToUpper(strings.Join(audio.MediaName.Protos, "/"))
	switch proto {
	case "UDP/TLS/RTP/SAVP", "UDP/TLS/RTP/SAVPF":
		if ice, err = parseICE(&sd, audio); err != nil {
			return nil, err
		}
	case "RTP/AVP", "RTP/AVPF":
	case "RTP/SAVP", "RTP/SAVPF":
		var refused []string
		for _, a := range audio.Attributes {
			if a.Key != "crypto" {
				continue
			}
			c, err := parseCrypto(a.Value)
			if err != nil {
				refused = append(refused, err.Error())
				continue
			}
			secure = &c
			break
		}
		if secure == nil {
			if len(refused) == 0 {
				return nil, errNoCrypto{"SRTP offered without a crypto attribute (SDES)"}
			}
			return nil, errNoCrypto{"no SRTP crypto we take: " + strings.Join(refused, "; ")}
		}
	default:
		return nil, errNoCrypto{fmt.Sprintf("media transport %s is not supported: we take RTP/AVP, RTP/SAVP keyed with SDES, or UDP/TLS/RTP/SAVP(F) (DTLS-SRTP with ICE)", proto)}
	}

	rtpmap := map[uint8]string{}
	for _, a := range audio.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		pt, enc, ok := strings.Cut(a.Value, " ")
		n, err := strconv.ParseUint(pt, 10, 7)
		if ok && err == nil {
			rtpmap[uint8(n)] = strings.ToLower(enc)
		}
	}
	o := &offer{Addr: netip.AddrPortFrom(ip.Unmap(), uint16(port)), Direction: direction(sd.Attributes, audio.Attributes), Crypto: secure, ICE: ice, Proto: proto,
		MLines: ml, formats: map[uint8]string{}}
	for _, f := range audio.MediaName.Formats {
		if n, err := strconv.ParseUint(f, 10, 7); err == nil {
			o.formats[uint8(n)] = rtpmap[uint8(n)]
		}
	}
	found := false
	for _, f := range audio.MediaName.Formats {
		n, err := strconv.ParseUint(f, 10, 7)
		if err != nil {
			continue
		}
		pt := uint8(n)
		name, mapped := rtpmap[pt]
		switch {
		case !found && (pt == 0 && (!mapped || name == "pcmu/8000")):
			o.Codec, found = sb.PCMU, true
		case !found && (pt == 8 && (!mapped || name == "pcma/8000")):
			o.Codec, found = sb.PCMA, true
		case !found && name == "pcmu/8000":
			o.Codec, found = sb.Codec{Name: "PCMU", PayloadType: pt, ClockRate: 8000}, true
		case !found && name == "pcma/8000":
			o.Codec, found = sb.Codec{Name: "PCMA", PayloadType: pt, ClockRate: 8000}, true
		case !found && name == "opus/48000/2" && (secure != nil || ice != nil):
			o.Codec, found = sb.Codec{Name: "opus", PayloadType: pt, ClockRate: 48000}, true
		}
	}
	if !found {
		return nil, errNoCodec{offered: strings.Join(audio.MediaName.Formats, " ")}
	}
	// telephone-event may come before the audio codec in the list.
	event := fmt.Sprintf("telephone-event/%d", o.Codec.ClockRate)
	for _, f := range audio.MediaName.Formats {
		if n, err := strconv.ParseUint(f, 10, 7); err == nil && rtpmap[uint8(n)] == event {
			o.Codec.DTMFType = uint8(n)
			break
		}
	}
	return o, nil
}

// direction returns the stream's direction attribute, falling back to the
// session's, then to sendrecv.
func direction(session, media []sdp.Attribute) string {
	for _, attrs := range [][]sdp.Attribute{media, session} {
		for _, a := range attrs {
			switch a.Key {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				return a.Key
			}
		}
	}
	return "sendrecv"
}

// answerDirection is our direction in reply to the far end's, on a call
// that came in as on one we placed: theirs mirrored (RFC 3264 §6.1),
// unless we hold the far end, when we take nothing from it (§8.4):
// sendonly, or inactive where it sends nothing either. An offer of the
// far end's while we hold (a session refresh, a re-offer after a codec
// change) so never takes it off hold behind call control's back.
func answerDirection(theirs string, holding bool) string {
	if holding {
		if theirs == "sendonly" || theirs == "inactive" {
			return "inactive"
		}
		return "sendonly"
	}
	switch theirs {
	case "sendonly":
		return "recvonly"
	case "recvonly":
		return "sendonly"
	case "inactive":
		return "inactive"
	}
	return "sendrecv"
}

// holdDirection is the direction of our offer that holds the far end
// (held) or takes it off hold, on a call that came in as on one we
// placed, given the far end's last direction toward us. A hold offers
// sendonly, or inactive where the far end already holds us (our stream
// was recvonly or inactive: RFC 3264 §8.4), as our answer while we hold
// would; a resume offers sendrecv, and the far end answers with its own
// wish.
func holdDirection(theirs string, held bool) string {
	if !held {
		return "sendrecv"
	}
	return answerDirection(theirs, true)
}

// security is what protects a stream, as our SDP describes it: SDES keys
// (an *srtpSession) or DTLS-SRTP over ICE (an *iceTransport); nil is
// plain RTP.
type security interface {
	mediaProto() string
	sessionLines(b *strings.Builder) // before the m= line
	mediaLines(b *strings.Builder)
}

// sessionHeader writes the lines before the m= line.
func sessionHeader(b *strings.Builder, sessionID, version uint64, ip netip.Addr, sec security) {
	family := "IP4"
	if ip.Is6() {
		family = "IP6"
	}
	fmt.Fprintf(b, "v=0\r\no=switchboard %d %d IN %s %s\r\ns=switchboard\r\nc=IN %s %s\r\nt=0 0\r\n", sessionID, version, family, ip, family, ip)
	if sec != nil {
		sec.sessionLines(b)
	}
}

// buildAnswer writes our SDP answer (or a re-INVITE's offer): RTP/SAVP
// with our crypto attribute, or DTLS-SRTP with our ICE and DTLS
// attributes, when sec is set; the streams of ml besides the audio
// refused in their places.
func buildAnswer(sessionID, version uint64, ip netip.Addr, port uint16, c sb.Codec, dir string, sec security, ml mlines) []byte {
	var b strings.Builder
	sessionHeader(&b, sessionID, version, ip, sec)
	for _, m := range ml.lines[:min(ml.audio, len(ml.lines))] {
		writeRefused(&b, m)
	}
	proto := "RTP/AVP"
	if sec != nil {
		proto = sec.mediaProto()
	}
	fmt.Fprintf(&b, "m=audio %d %s %d", port, proto, c.PayloadType)
	if c.DTMFType != 0 {
		fmt.Fprintf(&b, " %d", c.DTMFType)
	}
	if c.Name == "opus" {
		fmt.Fprintf(&b, "\r\na=rtpmap:%d opus/48000/2\r\na=fmtp:%d minptime=10;useinbandfec=1\r\n", c.PayloadType, c.PayloadType)
	} else {
		fmt.Fprintf(&b, "\r\na=rtpmap:%d %s/%d\r\n", c.PayloadType, c.Name, c.ClockRate)
	}
	if c.DTMFType != 0 {
		fmt.Fprintf(&b, "a=rtpmap:%d telephone-event/%d\r\na=fmtp:%d 0-16\r\n", c.DTMFType, c.ClockRate, c.DTMFType)
	}
	if sec != nil {
		sec.mediaLines(&b)
	}
	if _, ice := sec.(*iceTransport); !ice && ml.audio < len(ml.lines) && ml.lines[ml.audio].mid != "" {
		fmt.Fprintf(&b, "a=mid:%s\r\n", ml.lines[ml.audio].mid) // DTLS-SRTP writes its own
	}
	fmt.Fprintf(&b, "a=ptime:20\r\na=%s\r\n", dir)
	for _, m := range ml.lines[min(ml.audio+1, len(ml.lines)):] {
		writeRefused(&b, m)
	}
	return []byte(b.String())
}

// buildOffer writes our SDP offer for an INVITE that came without one
// (late offer), or for a call we place: both G.711 laws and
// telephone-event, the far end chooses; DTLS-SRTP over ICE when sec is
// an *iceTransport. With opus, Opus comes first (sb.Opus's payload type,
// as browsers and WhatsApp have it), then the G.711 laws, and
// telephone-event at 48 kHz for Opus beside the one at 8 kHz.
func buildOffer(sessionID, version uint64, ip netip.Addr, port uint16, sec security, opus bool) []byte {
	var b strings.Builder
	sessionHeader(&b, sessionID, version, ip, sec)
	proto := "RTP/AVP"
	if sec != nil {
		proto = sec.mediaProto()
	}
	if opus {
		o := sb.Opus.PayloadType
		fmt.Fprintf(&b, "m=audio %d %s %d 0 8 %d %d\r\n", port, proto, o, opusEventPT, g711EventPT)
		fmt.Fprintf(&b, "a=rtpmap:%d opus/48000/2\r\na=fmtp:%d minptime=10;useinbandfec=1\r\n", o, o)
	} else {
		fmt.Fprintf(&b, "m=audio %d %s 0 8 %d\r\n", port, proto, g711EventPT)
	}
	b.WriteString("a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n")
	if opus {
		fmt.Fprintf(&b, "a=rtpmap:%d telephone-event/48000\r\na=fmtp:%d 0-16\r\n", opusEventPT, opusEventPT)
	}
	fmt.Fprintf(&b, "a=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-16\r\n", g711EventPT, g711EventPT)
	if sec != nil {
		sec.mediaLines(&b)
	}
	b.WriteString("a=ptime:20\r\na=sendrecv\r\n")
	return []byte(b.String())
}

// The payload types of telephone-event in our offers: at 8 kHz beside
// G.711, at 48 kHz beside Opus (the ones browsers use).
const (
	g711EventPT = 101
	opusEventPT = 110
)
