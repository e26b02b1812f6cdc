package rxstamp

import (
	"net"
	"net/netip"
)

// Reader reads datagrams with their receive timestamps from one socket.
// It owns the control-message buffer, so a read allocates nothing; one
// Reader serves one goroutine.
type Reader struct {
	conn *net.UDPConn
	oob  [oobSize]byte
}

// NewReader turns on receive timestamps on conn and returns a reader for
// it. Where the kernel cannot stamp, reads still work and return 0 as the
// timestamp.
func NewReader(conn *net.UDPConn) *Reader {
	enable(conn) // best effort: without it every stamp reads 0
	return &Reader{conn: conn}
}

// Read reads one datagram into b. at is the kernel's receive time in Unix
// nanoseconds (CLOCK_REALTIME, comparable with time.Now), or 0 if unknown.
func (r *Reader) Read(b []byte) (n int, from netip.AddrPort, at int64, err error) {
	n, oobn, _, from, err := r.conn.ReadMsgUDPAddrPort(b, r.oob[:])
	if err != nil {
		return n, from, 0, err
	}
	return n, from, parse(r.oob[:oobn]), nil
}
