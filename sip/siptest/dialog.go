package siptest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"
)

// What a phone does inside a call beyond hold and resume: UPDATE
// (RFC 3311), a re-INVITE without SDP, session refreshes (RFC 4028), and
// counting the refreshes the far end sends.

// Refresh is an in-dialog request the far end sent this call: a re-INVITE
// or an UPDATE, with its Session-Expires and whether it carried SDP.
type Refresh struct {
	Method         string
	SessionExpires string
	SDP            []byte
}

type refreshes struct {
	mu   sync.Mutex
	got  []Refresh
	wake chan struct{}
}

// noteRefresh records a re-INVITE or UPDATE the far end sent and returns
// the refusal it is to get, or 0.
func (c *Call) noteRefresh(req *sip.Request) int {
	r := Refresh{Method: string(req.Method), SDP: req.Body()}
	if h := req.GetHeader("Session-Expires"); h != nil {
		r.SessionExpires = h.Value()
	}
	c.refreshes.mu.Lock()
	defer c.refreshes.mu.Unlock()
	c.refreshes.got = append(c.refreshes.got, r)
	if c.refreshes.wake != nil {
		close(c.refreshes.wake)
		c.refreshes.wake = nil
	}
	if n := len(c.refreshes.got); n <= len(c.phone.opts.Refusals) {
		return c.phone.opts.Refusals[n-1]
	}
	return c.phone.opts.RefuseReinvite
}

// Refreshes returns the re-INVITEs and UPDATEs the far end sent so far.
func (c *Call) Refreshes() []Refresh {
	c.refreshes.mu.Lock()
	defer c.refreshes.mu.Unlock()
	return append([]Refresh(nil), c.refreshes.got...)
}

// WaitRefreshes returns once the far end has sent n re-INVITEs or
// UPDATEs, or ctx is done.
func (c *Call) WaitRefreshes(ctx context.Context, n int) ([]Refresh, error) {
	for {
		c.refreshes.mu.Lock()
		if len(c.refreshes.got) >= n {
			got := append([]Refresh(nil), c.refreshes.got...)
			c.refreshes.mu.Unlock()
			return got, nil
		}
		if c.refreshes.wake == nil {
			c.refreshes.wake = make(chan struct{})
		}
		wake := c.refreshes.wake
		c.refreshes.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return c.Refreshes(), ctx.Err()
		}
	}
}

// echoTimer states in a 2xx the session timer a request asked for, the
// refresher as it named it (the far end when it named none).
func echoTimer(req *sip.Request, res *sip.Response) {
	h := req.GetHeader("Session-Expires")
	if h == nil {
		return
	}
	v := h.Value()
	if !strings.Contains(v, "refresher=") {
		v += ";refresher=uac"
	}
	res.AppendHeader(sip.NewHeader("Session-Expires", v))
	res.AppendHeader(sip.NewHeader("Require", "timer"))
}

// onUpdate answers the far end's UPDATE: 200, with our SDP when it
// carried an offer.
func (p *Phone) onUpdate(req *sip.Request, tx sip.ServerTransaction) {
	c := p.refreshOf(req, tx)
	if c == nil {
		return
	}
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	if len(req.Body()) > 0 {
		res = sip.NewSDPResponseFromRequest(req, c.sdp("sendrecv"))
	}
	echoTimer(req, res)
	tx.Respond(res)
}

// refreshOf returns the call a re-INVITE or UPDATE refreshes, noted as
// a refresh; nil once it is answered 481, or refused as Options say.
func (p *Phone) refreshOf(req *sip.Request, tx sip.ServerTransaction) *Call {
	p.mu.Lock()
	c := p.calls[req.CallID().Value()]
	p.mu.Unlock()
	if c == nil {
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
		return nil
	}
	if code := c.noteRefresh(req); code != 0 {
		tx.Respond(sip.NewResponseFromRequest(req, code, "Refused by siptest", nil))
		return nil
	}
	return c
}

// target is the far end's Contact.
func (c *Call) target() (sip.Uri, error) {
	res := c.dlg.InviteResponse
	if res == nil || res.Contact() == nil {
		return sip.Uri{}, errors.New("siptest: call not answered")
	}
	return res.Contact().Address, nil
}

// Update sends an UPDATE with body as its offer (none when nil) and
// headers, and returns the final response.
func (c *Call) Update(ctx context.Context, body []byte, headers ...sip.Header) (*sip.Response, error) {
	res, _, err := c.request(ctx, sip.UPDATE, body, headers)
	return res, err
}

// request sends an in-dialog request with body (SDP unless headers give
// another Content-Type; none when nil) and headers, and returns its final
// response and the request.
func (c *Call) request(ctx context.Context, method sip.RequestMethod, body []byte, headers []sip.Header) (*sip.Response, *sip.Request, error) {
	to, err := c.target()
	if err != nil {
		return nil, nil, err
	}
	req := sip.NewRequest(method, to)
	for _, h := range headers {
		req.AppendHeader(h)
	}
	if body != nil {
		if req.ContentType() == nil {
			req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		}
		req.SetBody(body)
	}
	res, err := c.dlg.Do(ctx, req)
	if err != nil {
		return nil, nil, fmt.Errorf("siptest: %s: %w", method, err)
	}
	return res, req, nil
}

// SDP is the phone's description of the call in direction dir.
func (c *Call) SDP(dir string) []byte { return c.sdp(dir) }

// AnswerSDP is the far end's SDP answer to the phone's INVITE.
func (c *Call) AnswerSDP() []byte {
	if c.dlg == nil || c.dlg.InviteResponse == nil {
		return nil
	}
	return c.dlg.InviteResponse.Body()
}

// SDPAt is the phone's description naming ap as its RTP address.
func (c *Call) SDPAt(ap netip.AddrPort, dir string) []byte { return c.sdpAt(ap, dir) }

// Reinvite sends a re-INVITE with body (none when nil: the far end then
// offers in its 200, and answer, given that offer, makes the ACK's
// answer) and headers. It returns the final response, ACKed when 2xx.
func (c *Call) Reinvite(ctx context.Context, body []byte, answer func(offer []byte) []byte, headers ...sip.Header) (*sip.Response, error) {
	res, req, err := c.request(ctx, sip.INVITE, body, headers)
	if err != nil || !res.IsSuccess() {
		return res, err
	}
	ack := sip.NewRequest(sip.ACK, req.Recipient)
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: req.CSeq().SeqNo, MethodName: sip.ACK})
	if body == nil && answer != nil {
		ack.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		ack.SetBody(answer(res.Body()))
	}
	if err := c.dlg.WriteRequest(ack); err != nil {
		return nil, fmt.Errorf("siptest: ACK re-INVITE: %w", err)
	}
	return res, nil
}
