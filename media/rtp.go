package media

import "encoding/binary"

// HeaderSize is the size of an RTP header without CSRCs or extension.
const HeaderSize = 12

// Header is the part of an RTP header the relay needs.
type Header struct {
	Marker      bool
	PayloadType uint8
	Seq         uint16
	Timestamp   uint32
	SSRC        uint32
	// PayloadOffset is where the payload starts (after CSRCs and any
	// header extension); PayloadEnd excludes padding.
	PayloadOffset int
	PayloadEnd    int
}

// ParseHeader reads the RTP header of pkt. ok is false for anything that is
// not a well-formed RTP version 2 packet, including RTCP that shares the
// port (payload types 72–76 with the marker bit, RFC 5761).
func ParseHeader(pkt []byte) (h Header, ok bool) {
	if len(pkt) < HeaderSize || pkt[0]>>6 != 2 {
		return h, false
	}
	if pt := pkt[1]; pt >= 200 && pt <= 204 { // RTCP SR, RR, SDES, BYE, APP
		return h, false
	}
	h.Marker = pkt[1]&0x80 != 0
	h.PayloadType = pkt[1] & 0x7f
	h.Seq = binary.BigEndian.Uint16(pkt[2:])
	h.Timestamp = binary.BigEndian.Uint32(pkt[4:])
	h.SSRC = binary.BigEndian.Uint32(pkt[8:])
	off := HeaderSize + 4*int(pkt[0]&0x0f)
	if pkt[0]&0x10 != 0 { // extension
		if len(pkt) < off+4 {
			return h, false
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(pkt[off+2:]))
	}
	end := len(pkt)
	if pkt[0]&0x20 != 0 { // padding
		pad := int(pkt[len(pkt)-1])
		if pad == 0 || end-pad < off {
			return h, false
		}
		end -= pad
	}
	if off > end {
		return h, false
	}
	h.PayloadOffset, h.PayloadEnd = off, end
	return h, true
}

// SetPayloadType overwrites the payload type, keeping the marker bit.
func SetPayloadType(pkt []byte, pt uint8) { pkt[1] = pkt[1]&0x80 | pt&0x7f }

// SetSeq overwrites the sequence number.
func SetSeq(pkt []byte, seq uint16) { binary.BigEndian.PutUint16(pkt[2:], seq) }

// SetTimestamp overwrites the timestamp.
func SetTimestamp(pkt []byte, ts uint32) { binary.BigEndian.PutUint32(pkt[4:], ts) }

// SetSSRC overwrites the SSRC.
func SetSSRC(pkt []byte, ssrc uint32) { binary.BigEndian.PutUint32(pkt[8:], ssrc) }

// AppendHeader appends a 12-byte RTP header to b.
func AppendHeader(b []byte, marker bool, pt uint8, seq uint16, ts, ssrc uint32) []byte {
	m := pt & 0x7f
	if marker {
		m |= 0x80
	}
	b = append(b, 0x80, m)
	b = binary.BigEndian.AppendUint16(b, seq)
	b = binary.BigEndian.AppendUint32(b, ts)
	return binary.BigEndian.AppendUint32(b, ssrc)
}
