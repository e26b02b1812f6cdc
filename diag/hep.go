package diag

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	sb "github.com/switchboard-voice/switchboard"
)

// HEPv3 (EEP) is how SIP messages reach a Homer collector: "HEP3", the
// packet's length, then chunks of vendor (0: generic), type, length
// (header included) and value.
const (
	hepFamily    = 0x0001
	hepProto     = 0x0002
	hepSrcIPv4   = 0x0003
	hepDstIPv4   = 0x0004
	hepSrcIPv6   = 0x0005
	hepDstIPv6   = 0x0006
	hepSrcPort   = 0x0007
	hepDstPort   = 0x0008
	hepTimeSec   = 0x0009
	hepTimeUsec  = 0x000a
	hepProtoType = 0x000b // 1: SIP
	hepCaptureID = 0x000c
	hepAuthKey   = 0x000e
	hepPayload   = 0x000f
	hepCorrID    = 0x0011
)

// EncodeHEP3 encodes one SIP message for a collector. correlationID ties
// it to its call (the Call-ID); password authenticates the agent when set.
func EncodeHEP3(m sb.SIPMessage, captureID uint32, password, correlationID string) []byte {
	b := make([]byte, 6, 128+len(m.Message))
	copy(b, "HEP3")
	chunk := func(typ uint16, v []byte) {
		b = binary.BigEndian.AppendUint16(b, 0)
		b = binary.BigEndian.AppendUint16(b, typ)
		b = binary.BigEndian.AppendUint16(b, uint16(6+len(v)))
		b = append(b, v...)
	}
	u8 := func(typ uint16, v byte) { chunk(typ, []byte{v}) }
	u16 := func(typ uint16, v uint16) { chunk(typ, binary.BigEndian.AppendUint16(nil, v)) }
	u32 := func(typ uint16, v uint32) { chunk(typ, binary.BigEndian.AppendUint32(nil, v)) }
	src, dst := m.Src.Addr().Unmap(), m.Dst.Addr().Unmap()
	if src.Is4() && dst.Is4() {
		u8(hepFamily, 2) // AF_INET
	} else {
		u8(hepFamily, 10) // AF_INET6
		src, dst = netipTo16(src), netipTo16(dst)
	}
	proto := byte(6)
	if m.Transport == "udp" {
		proto = 17
	}
	u8(hepProto, proto)
	if src.Is4() {
		chunk(hepSrcIPv4, src.AsSlice())
		chunk(hepDstIPv4, dst.AsSlice())
	} else {
		chunk(hepSrcIPv6, src.AsSlice())
		chunk(hepDstIPv6, dst.AsSlice())
	}
	u16(hepSrcPort, m.Src.Port())
	u16(hepDstPort, m.Dst.Port())
	u32(hepTimeSec, uint32(m.At.Unix()))
	u32(hepTimeUsec, uint32(m.At.Nanosecond()/1000))
	u8(hepProtoType, 1)
	u32(hepCaptureID, captureID)
	if password != "" {
		chunk(hepAuthKey, []byte(password))
	}
	chunk(hepPayload, []byte(m.Message))
	if correlationID != "" {
		chunk(hepCorrID, []byte(correlationID))
	}
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)))
	return b
}

// netipTo16 maps an IPv4 address into IPv6 for a packet of mixed families.
func netipTo16(a netip.Addr) netip.Addr {
	if a.Is4() {
		return netip.AddrFrom16(a.As16())
	}
	return a
}

// HEPSender sends SIP messages to a collector over UDP from its own
// goroutine. Send never blocks a call: when the queue is full the message
// is dropped and counted.
type HEPSender struct {
	conn      net.Conn
	captureID uint32
	password  string
	log       *slog.Logger
	queue     chan []byte
	dropped   atomic.Uint64
	done      chan struct{}
	mu        sync.RWMutex // Send holds it shared; Close, to close the queue
	closed    bool
}

// NewHEPSender sends to the collector at addr (host:port).
func NewHEPSender(addr string, captureID uint32, password string, log *slog.Logger) (*HEPSender, error) {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("diag: HEP collector %s: %w", addr, err)
	}
	s := &HEPSender{conn: conn, captureID: captureID, password: password, log: log, queue: make(chan []byte, 4096), done: make(chan struct{})}
	go s.run()
	return s, nil
}

// Send queues one message; it is a sip.Exporter.
func (s *HEPSender) Send(m sb.SIPMessage, sipCallID string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return
	}
	select {
	case s.queue <- EncodeHEP3(m, s.captureID, s.password, sipCallID):
	default:
		s.dropped.Add(1)
	}
}

// Dropped is how many messages the full queue refused.
func (s *HEPSender) Dropped() uint64 { return s.dropped.Load() }

func (s *HEPSender) run() {
	defer close(s.done)
	for b := range s.queue {
		if _, err := s.conn.Write(b); err != nil {
			s.log.Debug("HEP send", "err", err) // the collector may be down; calls go on
		}
	}
}

// Close sends what is queued and stops.
func (s *HEPSender) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.queue)
	}
	s.mu.Unlock()
	<-s.done
	return s.conn.Close()
}
