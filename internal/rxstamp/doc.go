// Package rxstamp reads the kernel's receive timestamp of each UDP datagram
// (SO_TIMESTAMPNS on Linux) beside the datagram itself, without allocating,
// so the delay the service adds to a packet can be measured from the moment
// the packet reached the host rather than from when a goroutine got to it.
//
// On systems without SO_TIMESTAMPNS the timestamp is 0 ("unknown") and
// nothing is measured.
package rxstamp
