package sip

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Reliable provisional responses (RFC 3262) on calls we place: our INVITE
// says Supported: 100rel, and a carrier that sends its 18x reliably
// (Require: 100rel, RSeq) gets a PRACK for each, RAck naming the RSeq and
// the INVITE's CSeq; otherwise it retransmits the 18x and, unacknowledged,
// gives up on the call. On calls that come in we send them (reliable.go).

// prackTimeout bounds the wait for the PRACK's own answer (64·T1).
const prackTimeout = 32 * time.Second

// requires reports whether m's Require header names tag.
func requires(m headered, tag string) bool {
	for _, h := range m.GetHeaders("Require") {
		for _, t := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(t), tag) {
				return true
			}
		}
	}
	return false
}

// prack acknowledges res when it is a reliable provisional response that
// is new in its early dialog (RSeq order is each dialog's own, RFC 3262
// §4). It runs on the goroutine that waits for the INVITE's answer,
// where the dialog's last response is res, so the PRACK goes to the early
// dialog res made; its own answer is awaited aside.
func (l *outLeg) prack(ctx context.Context, res *sip.Response) {
	if res.StatusCode <= 100 || res.StatusCode >= 200 || !requires(res, "100rel") {
		return
	}
	h := res.GetHeader("RSeq")
	if h == nil || res.CSeq() == nil {
		l.log.Info("a reliable provisional response without RSeq: not acknowledged", "code", res.StatusCode)
		return
	}
	rseq, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
	if err != nil {
		l.log.Info("a reliable provisional response with a bad RSeq: not acknowledged", "rseq", h.Value())
		return
	}
	l.mu.Lock()
	d := l.dialog(tagOf(res.To().Params))
	seen := d.rseq != 0 && uint32(rseq) <= d.rseq
	if !seen {
		d.rseq = uint32(rseq)
	}
	l.mu.Unlock()
	if seen {
		return // a retransmission: the PRACK's transaction retransmits itself
	}
	target := l.dlg.InviteRequest.Recipient
	if c := res.Contact(); c != nil {
		target = c.Address
	}
	req := sip.NewRequest(sip.PRACK, target)
	req.AppendHeader(sip.NewHeader("RAck", fmt.Sprintf("%d %d %s", rseq, res.CSeq().SeqNo, res.CSeq().MethodName)))
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), prackTimeout)
	tx, err := l.dlg.TransactionRequest(tctx, req)
	if err != nil {
		cancel()
		l.log.Info("PRACK not sent", "err", err)
		return
	}
	l.s.wg.Add(1)
	go func() {
		defer l.s.wg.Done()
		defer cancel()
		defer tx.Terminate()
		for {
			select {
			case r := <-tx.Responses():
				if r.IsProvisional() {
					continue
				}
				if !r.IsSuccess() {
					l.log.Info("PRACK refused", "code", r.StatusCode, "reason", r.Reason)
				}
				return
			case <-tx.Done():
				return
			case <-tctx.Done():
				return
			}
		}
	}()
}
