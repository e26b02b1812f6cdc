// Package media holds the codec-level pieces shared by the legs and the
// bridge: RTP header access on raw packets, sequence/timestamp rewriting,
// receive statistics (RFC 3550), G.711 conversion and RFC 4733 DTMF events.
//
// Everything here works on packets in place and allocates nothing per
// packet: it sits on the relay's hot path.
package media
