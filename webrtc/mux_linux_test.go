package webrtc

import (
	"testing"

	"github.com/switchboard-voice/switchboard/internal/rxqueue/rxqueuetest"
)

// The shared socket's queue is as large as asked, or as large as
// net.core.rmem_max lets it: never the system's small default.
func TestSharedSocketQueueSize(t *testing.T) {
	e, err := NewEngine(Config{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if want := rxqueuetest.Expect(t, muxReadBuffer); e.mux.queue < want {
		t.Errorf("the shared socket's receive queue is %d bytes, want at least %d", e.mux.queue, want)
	}
}
