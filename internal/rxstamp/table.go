package rxstamp

import (
	"encoding/binary"
	"sync/atomic"
)

// tableSize is a power of two: at 50 packets a second per call, a slot is
// reused after about tableSize/50/calls seconds (1.3 s at 1,000 calls),
// far longer than a packet takes to cross the service.
const tableSize = 1 << 16

// Table remembers the receive timestamps of (S)RTP packets by SSRC and
// sequence number, for a path where the packet and its timestamp part
// ways: pion's ICE mux reads the socket in one goroutine, and the
// decrypted packet surfaces in another. SRTP leaves the RTP header in
// clear (RFC 3711 §3.1), so the same key is seen on both sides.
//
// Writers and readers share no lock: a writer claims its slot (one
// atomic swap to busy; a slot another writer holds is skipped, and that
// packet goes unmeasured), then writes it key-last; a reader reads
// key-first and key-again. So a reader that raced a writer sees a key that
// does not match and gets 0 (nothing measured), never another packet's
// time, however many sockets write (one per local address).
type Table struct {
	slots [tableSize]slot
}

type slot struct {
	key atomic.Uint64 // ssrc<<16 | seq, plus 1<<48 so no key is 0
	at  atomic.Int64
}

func key(ssrc uint32, seq uint16) uint64 { return 1<<48 | uint64(ssrc)<<16 | uint64(seq) }

// busy marks a slot a writer holds: no key is 1.
const busy = 1

func (t *Table) slot(ssrc uint32, seq uint16) *slot {
	return &t.slots[(ssrc*0x9E3779B1+uint32(seq))&(tableSize-1)]
}

// Put records at for the packet in pkt, if pkt is RTP (RFC 7983: first
// byte 128–191, and not RTCP's payload types 192–223).
func (t *Table) Put(pkt []byte, at int64) {
	if at == 0 || len(pkt) < 12 || pkt[0] < 128 || pkt[0] > 191 || (pkt[1] >= 192 && pkt[1] <= 223) {
		return
	}
	ssrc, seq := binary.BigEndian.Uint32(pkt[8:12]), binary.BigEndian.Uint16(pkt[2:4])
	s := t.slot(ssrc, seq)
	if old := s.key.Load(); old == busy || !s.key.CompareAndSwap(old, busy) {
		return // another writer has the slot
	}
	s.at.Store(at)
	s.key.Store(key(ssrc, seq))
}

// Get returns the receive time recorded for the RTP packet with ssrc and
// seq, or 0.
func (t *Table) Get(ssrc uint32, seq uint16) int64 {
	s, k := t.slot(ssrc, seq), key(ssrc, seq)
	if s.key.Load() != k {
		return 0
	}
	at := s.at.Load()
	if s.key.Load() != k {
		return 0
	}
	return at
}
