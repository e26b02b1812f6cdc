package webrtc

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// connectPeers connects two test peers to each other (non-trickle).
func connectPeers(tb testing.TB, a, b *peer) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	connected := make(chan struct{}, 1)
	a.pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			select {
			case connected <- struct{}{}:
			default:
			}
		}
	})
	offer, err := a.pc.CreateOffer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(a.pc)
	if err := a.pc.SetLocalDescription(offer); err != nil {
		tb.Fatal(err)
	}
	<-gathered
	if err := b.pc.SetRemoteDescription(*a.pc.LocalDescription()); err != nil {
		tb.Fatal(err)
	}
	answer, err := b.pc.CreateAnswer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	gathered = webrtc.GatheringCompletePromise(b.pc)
	if err := b.pc.SetLocalDescription(answer); err != nil {
		tb.Fatal(err)
	}
	<-gathered
	if err := a.pc.SetRemoteDescription(*b.pc.LocalDescription()); err != nil {
		tb.Fatal(err)
	}
	select {
	case <-connected:
	case <-ctx.Done():
		tb.Fatal("peers not connected")
	}
}

// BenchmarkSessionMemory reports the heap one connected operator session
// holds (B/session): the heap growth over N connected sessions with their
// test peers, less N test peers' own (measured as pairs of test peers).
// A figure, not a test: the heap depends on when the GC ran.
func BenchmarkSessionMemory(b *testing.B) {
	b.Run("shared-port", func(b *testing.B) { sessionMemory(b, 0) })
	b.Run("port-per-connection", func(b *testing.B) { sessionMemory(b, -1) })
}

func sessionMemory(b *testing.B, udpPort int) {
	const n = 100
	// One of each first: what pion allocates once per process is not a
	// connection's.
	w1, w2 := newPeer(b), newPeer(b)
	connectPeers(b, w1, w2)
	warm, err := mustEngine(b).NewSession()
	if err != nil {
		b.Fatal(err)
	}
	mustConnect(b, warm)
	for b.Loop() {
		base := heapInUse()
		var pairs []*peer
		for range n / 2 {
			x, y := newPeer(b), newPeer(b)
			connectPeers(b, x, y)
			pairs = append(pairs, x, y)
		}
		perPeer := float64(heapInUse()-base) / n
		for _, p := range pairs {
			p.pc.Close()
		}

		e, err := NewEngine(Config{LoopbackOnly: true, UDPPort: udpPort})
		if err != nil {
			b.Fatal(err)
		}
		base = heapInUse()
		var sessions []Session
		for range n {
			s, err := e.NewSession()
			if err != nil {
				b.Fatal(err)
			}
			mustConnect(b, s)
			sessions = append(sessions, s)
		}
		withPeers := float64(heapInUse()-base) / n
		for _, s := range sessions {
			s.Close()
		}
		e.Close()
		b.ReportMetric(withPeers-perPeer, "B/session")
		b.ReportMetric(perPeer, "B/test-peer")
	}
}
