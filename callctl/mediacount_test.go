package callctl

import (
	"testing"

	sb "github.com/switchboard-voice/switchboard"
)

// What a call relayed is counted once: each count is what passed the
// last, and loss only grows (late packets lower the loss so far).
func TestMediaCountedOnce(t *testing.T) {
	var c mediaCounted
	for i, s := range []struct {
		st   sb.MediaStats
		want sb.MediaCount
	}{
		{sb.MediaStats{Packets: 100, Lost: 3}, sb.MediaCount{Packets: 100, Lost: 3}},
		{sb.MediaStats{Packets: 150, Lost: 1}, sb.MediaCount{Packets: 50}},
		{sb.MediaStats{Packets: 150, Lost: 5}, sb.MediaCount{Lost: 2}},
		{sb.MediaStats{Packets: 160, Lost: -2}, sb.MediaCount{Packets: 10}},
	} {
		if got := c.next(s.st); got != s.want {
			t.Errorf("count %d of %+v: %+v, want %+v", i, s.st, got, s.want)
		}
	}
}
