package callctl

import (
	"bytes"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/media"
)

// A recording keeps the operator's channel in the law it declared: a
// later bridge to a page sending the other law is converted for the
// recording, the caller's side never, and the bridge's packet is left as
// it was.
func TestRecordingTapKeepsTheDeclaredLaw(t *testing.T) {
	var got [2][]byte
	tap := func(fromCaller bool, p []byte, _ time.Time) {
		ch := 1
		if fromCaller {
			ch = 0
		}
		got[ch] = bytes.Clone(p)
	}
	pkt := []byte{0x00, 0x55, 0xd5, 0xff}
	orig := bytes.Clone(pkt)
	inLaw(tap, sb.PCMA, sb.PCMU)(false, pkt, time.Time{})
	inLaw(tap, sb.PCMA, sb.PCMU)(true, pkt, time.Time{})
	want := bytes.Clone(orig)
	media.AlawToUlaw(want)
	if !bytes.Equal(got[1], want) || !bytes.Equal(got[0], orig) || !bytes.Equal(pkt, orig) {
		t.Errorf("operator %x (want %x), caller %x, packet %x (want %x untouched)", got[1], want, got[0], pkt, orig)
	}
	got = [2][]byte{}
	inLaw(tap, sb.PCMU, sb.PCMU)(false, pkt, time.Time{})
	if !bytes.Equal(got[1], orig) {
		t.Errorf("same law converted: %x", got[1])
	}
}
