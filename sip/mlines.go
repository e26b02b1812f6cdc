package sip

import (
	"fmt"
	"strings"
)

// An offer may carry streams besides the one audio stream we take: video,
// text, a T.38 fax stream (m=image) that a carrier's fax detection offers
// in a re-INVITE. The answer has as many m= lines as the offer, in its
// order, each stream we do not take refused with port 0 (RFC 3264 §6),
// and our later offers keep them so (§8).

// mline is one of an offer's m= lines as an answer mirrors it.
type mline struct {
	media, proto, format, mid string
	rtpmap                    string // the format's a=rtpmap value, if the offer mapped it
}

// mlines are a description's m= lines and which of them is the audio we
// carry; none for a description we made, of our audio alone.
type mlines struct {
	lines []mline
	audio int
}

// scanMLines reads the m= lines of an SDP body as written.
func scanMLines(body string) []mline {
	var out []mline
	for line := range strings.Lines(body) {
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "m="):
			f := strings.Fields(line[2:])
			m := mline{format: "0"}
			if len(f) > 0 {
				m.media = f[0]
			}
			if len(f) > 2 {
				m.proto = f[2]
			}
			if len(f) > 3 {
				m.format = f[3]
			}
			out = append(out, m)
		case strings.HasPrefix(line, "a=mid:") && len(out) > 0:
			out[len(out)-1].mid = strings.TrimPrefix(line, "a=mid:")
		case strings.HasPrefix(line, "a=rtpmap:") && len(out) > 0:
			m := &out[len(out)-1]
			if pt, _, _ := strings.Cut(strings.TrimPrefix(line, "a=rtpmap:"), " "); pt == m.format && m.rtpmap == "" {
				m.rtpmap = strings.TrimPrefix(line, "a=rtpmap:")
			}
		}
	}
	return out
}

// parsable is body with each m= line the SDP parser refuses (image: T.38
// over udptl, neither of which it knows) written as a data channel, which
// it takes; the lines keep their order, we read no stream but the audio,
// and scanMLines still reads the lines as written.
func parsable(body string) string {
	if !strings.Contains(body, "m=image") {
		return body
	}
	lines := strings.SplitAfter(body, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "m=image ") {
			lines[i] = "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
		}
	}
	return strings.Join(lines, "")
}

// writeRefused writes m, a stream we do not take: port 0, its transport
// and one of its formats (mapped as the offer mapped it: parsers want a
// dynamic payload type's rtpmap even on a refused line), and its mid so
// that the answer's lines pair with the offer's.
func writeRefused(b *strings.Builder, m mline) {
	fmt.Fprintf(b, "m=%s 0 %s %s\r\n", m.media, m.proto, m.format)
	if m.rtpmap != "" {
		fmt.Fprintf(b, "a=rtpmap:%s\r\n", m.rtpmap)
	}
	if m.mid != "" {
		fmt.Fprintf(b, "a=mid:%s\r\n", m.mid)
	}
}
