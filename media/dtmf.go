package media

import "encoding/binary"

// DTMFEvent is an RFC 4733 telephone-event payload.
type DTMFEvent struct {
	Event    uint8 // 0–9, 10 '*', 11 '#', 12–15 'A'–'D'
	End      bool
	Volume   uint8
	Duration uint16
}

// ParseDTMF reads a telephone-event payload.
func ParseDTMF(payload []byte) (DTMFEvent, bool) {
	if len(payload) < 4 {
		return DTMFEvent{}, false
	}
	return DTMFEvent{
		Event:    payload[0],
		End:      payload[1]&0x80 != 0,
		Volume:   payload[1] & 0x3f,
		Duration: binary.BigEndian.Uint16(payload[2:]),
	}, true
}

// AppendDTMF appends a telephone-event payload to b.
func AppendDTMF(b []byte, e DTMFEvent) []byte {
	v := e.Volume & 0x3f
	if e.End {
		v |= 0x80
	}
	b = append(b, e.Event, v)
	return binary.BigEndian.AppendUint16(b, e.Duration)
}

const dtmfDigits = "0123456789*#ABCD"

// DTMFDigit returns the key for an event code, or 0 for codes that are not
// keypad events (RFC 4733 also carries tones such as flash).
func DTMFDigit(event uint8) byte {
	if int(event) < len(dtmfDigits) {
		return dtmfDigits[event]
	}
	return 0
}

// DTMFCode returns the event code for a key, or -1.
func DTMFCode(digit byte) int {
	for i := 0; i < len(dtmfDigits); i++ {
		if dtmfDigits[i] == digit {
			return i
		}
	}
	return -1
}
