package rxstamp

import (
	"net"
	"net/netip"
)

// Conn is a UDP socket for pion's ICE UDP mux that notes each RTP
// packet's receive timestamp in a Table as it reads it. It implements
// pion/ice's AddrPortReaderWriter, which the mux prefers, so reads and
// writes allocate nothing. The mux reads from one goroutine, which Conn
// relies on: its Reader is not shared.
type Conn struct {
	*net.UDPConn
	r     *Reader
	table *Table
}

// NewConn stamps what conn reads into table.
func NewConn(conn *net.UDPConn, table *Table) *Conn {
	return &Conn{UDPConn: conn, r: NewReader(conn), table: table}
}

// ReadFromAddrPort reads a datagram and records its receive time.
func (c *Conn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, from, at, err := c.r.Read(b)
	if err == nil {
		c.table.Put(b[:n], at)
	}
	return n, from, err
}

// ReadFrom is net.PacketConn's read, stamped too.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// WriteToAddrPort sends b to addr.
func (c *Conn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return c.UDPConn.WriteToUDPAddrPort(b, addr)
}
