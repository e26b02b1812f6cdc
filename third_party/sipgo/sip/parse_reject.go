package sip

import (
	"bytes"
	"net"
)

// unparsableReply is the stateless 400 (Bad Request) for a datagram that
// the parser refused, and where it goes; nil when the datagram is not a
// request (a response, garbage) or lacks a header a response must copy
// (RFC 3261 8.2.6.2: Via, From, To, Call-ID, CSeq): then nobody can be
// answered. A request that does not parse is answered rather than dropped
// so that its sender learns why and stops retransmitting (RFC 4475
// 3.1.2). The header lines are copied as they came, broken or not: the
// sender matches the answer by them.
func unparsableReply(data []byte, src net.Addr) ([]byte, net.Addr) {
	end := bytes.Index(data, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(data)
	}
	lines := bytes.Split(data[:end], []byte("\r\n"))
	if !looksLikeRequestLine(lines[0]) || bytes.HasPrefix(lines[0], []byte("ACK ")) {
		// An ACK is never answered (RFC 3261 17.2.1).
		return nil, nil
	}
	var vias, from, to, callID, cseq [][]byte
	for i := 1; i < len(lines); i++ {
		// A header with its continuation lines.
		h := lines[i]
		for i+1 < len(lines) && len(lines[i+1]) > 0 && (lines[i+1][0] == ' ' || lines[i+1][0] == '\t') {
			i++
			h = append(append(append([]byte(nil), h...), "\r\n"...), lines[i]...)
		}
		colon := bytes.IndexByte(h, ':')
		if colon <= 0 {
			continue
		}
		switch string(bytes.ToLower(bytes.TrimSpace(h[:colon]))) {
		case "via", "v":
			vias = append(vias, h)
		case "from", "f":
			from = append(from, h)
		case "to", "t":
			to = append(to, h)
		case "call-id", "i":
			callID = append(callID, h)
		case "cseq":
			cseq = append(cseq, h)
		}
	}
	if len(vias) == 0 || len(from) == 0 || len(to) == 0 || len(callID) == 0 || len(cseq) == 0 {
		return nil, nil
	}
	toTag := to[0]
	if !bytes.Contains(bytes.ToLower(toTag), []byte("tag")) {
		toTag = append(append(append([]byte(nil), toTag...), ";tag="...), GenerateTagN(16)...)
	}
	var res bytes.Buffer
	res.WriteString("SIP/2.0 400 Bad Request\r\n")
	for _, h := range append(append(vias, from[0], toTag, callID[0]), cseq[0]) {
		res.Write(h)
		res.WriteString("\r\n")
	}
	res.WriteString("Content-Length: 0\r\n\r\n")
	return res.Bytes(), replyAddr(vias[0], src)
}

// looksLikeRequestLine reports whether line is "METHOD ... SIP/x.y", however
// broken in between.
func looksLikeRequestLine(line []byte) bool {
	f := bytes.Fields(line)
	if len(f) < 3 || !bytes.HasPrefix(f[len(f)-1], []byte("SIP/")) {
		return false
	}
	for _, c := range f[0] {
		if !isTokenChar(c) {
			return false
		}
	}
	return true
}

func isTokenChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || bytes.IndexByte([]byte("-.!%*_+`'~"), c) >= 0
}

// replyAddr is where a response to a datagram from src goes (RFC 3261
// 18.2.2, RFC 3581 4): the source address, with the port of the top Via's
// sent-by unless it asks for rport; src when that Via does not parse.
func replyAddr(via []byte, src net.Addr) net.Addr {
	udp, ok := src.(*net.UDPAddr)
	colon := bytes.IndexByte(via, ':')
	h := ViaHeader{}
	if !ok || parseViaHeader(string(bytes.ReplaceAll(via[colon+1:], []byte("\r\n"), nil)), &h) != nil {
		return src
	}
	if rport, ok := h.Params.Get("rport"); ok && rport == "" {
		return src
	}
	port := h.Port
	if port == 0 {
		port = DefaultUdpPort
	}
	return &net.UDPAddr{IP: udp.IP, Port: port, Zone: udp.Zone}
}
