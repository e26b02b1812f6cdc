// Package rxqueue sizes a UDP socket's receive queue. One socket that
// takes many peers' datagrams (SIP from every trunk, every operator's
// media) must ride out a moment its reader is not scheduled: the system's
// default queue, about 200 KB, holds about a hundred datagrams, and what
// arrives past it is dropped by the kernel before the service sees it.
package rxqueue
