package rxqueue_test

import (
	"net"
	"testing"

	"github.com/switchboard-voice/switchboard/internal/rxqueue"
	"github.com/switchboard-voice/switchboard/internal/rxqueue/rxqueuetest"
)

// The queue is as large as asked when the process may pass
// net.core.rmem_max (CAP_NET_ADMIN), and as large as rmem_max lets it
// otherwise: never the small default. Grow says which.
func TestGrow(t *testing.T) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const asked = 16 << 20
	got, err := rxqueue.Grow(c, asked)
	if err != nil {
		t.Fatal(err)
	}
	if want := rxqueuetest.Expect(t, asked); got < want {
		t.Errorf("receive queue %d bytes, want at least %d (asked %d)", got, want, asked)
	}
}
