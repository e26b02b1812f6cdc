package siptest

import (
	"math/rand/v2"
	"net"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// A phone can also be the far end of the calls the service places (a
// carrier behind a trunk's outbound route) that takes DTLS-SRTP over ICE:
// it answers each INVITE at once with its PeerConnection's answer to the
// offer. The call ends with the service's BYE.

// AnswerDTLS makes the phone answer INVITEs on a UDP socket of its
// LocalIP, and returns the socket's address and the calls as they are
// answered (200 sent). The phone's Codec is the one it takes.
func (p *Phone) AnswerDTLS() (string, <-chan *Call, error) {
	ln, err := net.ListenPacket("udp", net.JoinHostPort(p.opts.LocalIP, "0"))
	if err != nil {
		return "", nil, err
	}
	calls := make(chan *Call, 8)
	p.mu.Lock()
	p.answered, p.answerAt = calls, ln.LocalAddr().(*net.UDPAddr).Port
	p.mu.Unlock()
	go p.srv.ServeUDP(ln)
	return ln.LocalAddr().String(), calls, nil
}

// answerInvite answers a new call with DTLS-SRTP, or 488 when the offer
// is not one the PeerConnection takes.
func (p *Phone) answerInvite(req *sip.Request, tx sip.ServerTransaction, calls chan *Call) {
	c := &Call{phone: p, codec: p.opts.Codec, ssrc: rand.Uint32(), seq: uint16(rand.Uint32()), ts: rand.Uint32(),
		ringing: make(chan struct{}), answered: make(chan struct{}), ended: make(chan struct{}), cancel: func() {}}
	close(c.answered)
	var err error
	if c.dtls, err = newDTLSMedia(c.codec, p.opts.ICELite, c.received); err != nil {
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusInternalServerError, err.Error(), nil))
		return
	}
	body, err := c.dtls.answer(req.Body())
	if err != nil {
		c.dtls.pc.Close()
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusNotAcceptableHere, err.Error(), nil))
		return
	}
	p.mu.Lock()
	port := p.answerAt
	p.mu.Unlock()
	dua := &sipgo.DialogUA{Client: p.client, ContactHDR: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "carrier", Host: p.opts.LocalIP, Port: port}}}
	if c.srvDlg, err = dua.ReadInvite(req, tx); err != nil {
		c.dtls.pc.Close()
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusBadRequest, err.Error(), nil))
		return
	}
	c.ID = req.CallID().Value()
	p.mu.Lock()
	p.calls[c.ID] = c
	p.mu.Unlock()
	// Answered before the handler returns: sipgo ends a server
	// transaction its handler left without a final response. RespondSDP
	// returns once the ACK is in (requests are handled concurrently).
	if err := c.srvDlg.RespondSDP(body); err != nil {
		c.result = err
		c.Close()
		return
	}
	calls <- c
}
