package media

import (
	"encoding/binary"
	"time"
)

// Pattern frames are audio payloads that carry their own sequence number
// and send time, with the rest of the frame derived from the sequence
// number. A receiver can tell that a frame arrived intact, which frames
// went missing, and how long each took, without any side channel. Tests
// and the load tool send them through calls whose two legs share a codec,
// so the bridge passes them unchanged.
//
// Layout: 4-byte magic, 4-byte sequence, 8-byte send time (Unix
// nanoseconds), then filler bytes that are a function of the sequence.
const (
	patternMagic  = 0x53424150 // "SBAP"
	patternHeader = 16
)

// PatternFrame writes frame seq, stamped with sentAt, into buf and returns
// it. buf must be at least 16 bytes; a 20 ms G.711 frame is 160.
func PatternFrame(buf []byte, seq uint32, sentAt time.Time) []byte {
	binary.BigEndian.PutUint32(buf[0:], patternMagic)
	binary.BigEndian.PutUint32(buf[4:], seq)
	binary.BigEndian.PutUint64(buf[8:], uint64(sentAt.UnixNano()))
	for i := patternHeader; i < len(buf); i++ {
		buf[i] = patternFill(seq, i)
	}
	return buf
}

// CheckPatternFrame reports the sequence and send time of a pattern frame,
// and ok=false if payload is not an intact pattern frame.
func CheckPatternFrame(payload []byte) (seq uint32, sentAt time.Time, ok bool) {
	if len(payload) < patternHeader || binary.BigEndian.Uint32(payload) != patternMagic {
		return 0, time.Time{}, false
	}
	seq = binary.BigEndian.Uint32(payload[4:])
	for i := patternHeader; i < len(payload); i++ {
		if payload[i] != patternFill(seq, i) {
			return seq, time.Time{}, false
		}
	}
	return seq, time.Unix(0, int64(binary.BigEndian.Uint64(payload[8:]))), true
}

// patternFill folds every byte of seq in, so a flipped bit anywhere in the
// sequence number shows as a filler mismatch.
func patternFill(seq uint32, i int) byte {
	h := seq ^ seq>>8 ^ seq>>16 ^ seq>>24
	return byte(h*31 + uint32(i)*7)
}
