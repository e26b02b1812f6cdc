package sip

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	sb "github.com/switchboard-voice/switchboard"
)

// Reliable provisional responses on calls that come in (RFC 3262 §3; the
// calls we place take them too: prack.go). When the INVITE requires
// 100rel, each 1xx we send but 100 goes with Require: 100rel and an RSeq,
// chosen at random for the first and one more for each next, and is sent
// again at T1, 2·T1, … up to T2 until a PRACK whose RAck names it (its
// RSeq, the INVITE's CSeq number and method) comes: that PRACK gets 200,
// one that names nothing awaiting its PRACK 481. One is awaiting its
// PRACK at a time; the next waits for that. Unacknowledged for 64·T1, the
// INVITE is refused with 500 and call control is told (LegFailed), as of
// any failure of the call's own. A final response, the caller's CANCEL or
// early BYE, or the leg closing stops the retransmissions.
//
// On a late-offer call the first reliable response is the first reliable
// non-failure message, so it carries our offer (RFC 3261 §13.2.1), its
// PRACK the answer (RFC 3262 §5), and the 200 waits for that PRACK and
// repeats our description unchanged (§3: no 2xx while a reliable response
// with SDP is unacknowledged). A PRACK's RAck is matched first, its body
// judged after: an answer that is missing, or in a body we refuse or
// cannot use, gets the PRACK 200 and the INVITE 488 naming the PRACK.
//
// Deviation, decided: RFC 3262 §3 says a PRACK that matches MUST get a
// 2xx. Two that match get an error here, their RAck acknowledging the
// response all the same, so its retransmissions end and the call goes on:
// a PRACK that brings an offer of its own before the call is answered
// gets 500 with a Retry-After, as an early UPDATE's does (RFC 3311
// §5.2), whatever the INVITE carried; and one whose body we refuse
// (multipart with a part required and not understood, malformed) where
// no answer was due gets 400 or 415, as any request's. A 2xx to a PRACK
// with an offer must carry the answer (RFC 3262 §5), and we have none to
// give before the call is answered (the INVITE's own offer may await
// ours, or ours the caller's: RFC 3261 §13.2.1 allows no second offer
// then); an answer refusing each stream (port 0) would end the call's
// media. The 500 says to offer again in a moment, once the call is
// answered, as RFC 3311 has it for the same crossing.
//
// An INVITE that only says Supported: 100rel gets its 1xx as before,
// unreliable: reliability costs the caller a PRACK for our 180 and the
// call its failure when the PRACKs are lost, for no gain of ours.

// reliable is a leg's reliable provisional responses.
type reliable struct {
	on bool // the INVITE requires 100rel; set before the leg is shared

	mu      sync.Mutex
	rseq    uint32         // the last RSeq sent; 0 before the first
	out     *provisional   // sent and awaiting its PRACK
	waiting []*provisional // to be sent once out is acknowledged
	over    bool           // the INVITE ended without a 2xx: no PRACK is awaited
}

// provisional is one reliable provisional response of ours.
type provisional struct {
	res      *sip.Response
	rseq     uint32
	offer    bool          // it carries our offer: its PRACK carries the answer
	done     chan struct{} // closed once acknowledged, or given up on
	doneOnce sync.Once
}

func (p *provisional) settle() { p.doneOnce.Do(func() { close(p.done) }) }

// start makes p the response awaiting its PRACK, with the next RSeq.
// r.mu is held.
func (r *reliable) start(p *provisional) {
	if r.rseq == 0 {
		r.rseq = rand.Uint32N(1<<31-1) + 1 // 1 to 2**31-1 (RFC 3262 §3)
	} else {
		r.rseq++
	}
	p.rseq = r.rseq
	p.res.AppendHeader(sip.NewHeader("Require", "100rel"))
	p.res.AppendHeader(sip.NewHeader("RSeq", strconv.FormatUint(uint64(p.rseq), 10)))
	r.out = p
}

// end says the INVITE ended without a 2xx: what awaits its PRACK, or its
// turn, never will.
func (r *reliable) end() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.over = true
	r.waiting = nil
	if r.out != nil {
		r.out.settle()
	}
}

// pendingOffer is the response awaiting its PRACK when it carries our
// offer, or nil.
func (r *reliable) pendingOffer() *provisional {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.out != nil && r.out.offer {
		return r.out
	}
	return nil
}

// retransmitTimers are T1 and T2 for our reliable provisional responses.
func (s *Server) retransmitTimers() (t1, t2 time.Duration) {
	if s.relT1 > 0 {
		return s.relT1, 8 * s.relT1
	}
	return sip.T1, sip.T2
}

// sendReliably sends res, a 1xx but 100, reliably: now, or once the
// responses before it are acknowledged. offer says it carries our offer.
func (l *leg) sendReliably(res *sip.Response, offer bool) error {
	p := &provisional{res: res, offer: offer, done: make(chan struct{})}
	l.rel.mu.Lock()
	if l.rel.over {
		l.rel.mu.Unlock()
		return errors.New("sip: the INVITE has its final response")
	}
	if l.rel.out != nil || len(l.rel.waiting) > 0 {
		l.rel.waiting = append(l.rel.waiting, p)
		l.rel.mu.Unlock()
		return nil
	}
	l.rel.start(p)
	l.rel.mu.Unlock()
	return l.transmit(p)
}

// transmit sends p, the response now awaiting its PRACK, and has it sent
// again until it is acknowledged.
func (l *leg) transmit(p *provisional) error {
	if err := l.dlg.WriteResponse(p.res); err != nil {
		// The INVITE has its final response, or the caller canceled.
		l.rel.end()
		return fmt.Errorf("sip: reliable %d: %w", p.res.StatusCode, err)
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.s.wg.Add(1) // while the leg's own count, released by removeLeg once closed, is held
	l.mu.Unlock()
	go l.retransmit(p)
	return nil
}

// retransmit sends p again at T1, 2·T1, … up to T2 until its PRACK comes;
// after 64·T1 without one, the INVITE is refused (RFC 3262 §3).
func (l *leg) retransmit(p *provisional) {
	defer l.s.wg.Done()
	t1, t2 := l.s.retransmitTimers()
	interval := t1
	again := time.NewTimer(interval)
	defer again.Stop()
	giveUp := time.NewTimer(64 * t1)
	defer giveUp.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-l.dlg.Context().Done(): // CANCEL, an early BYE, a final response acknowledged
			l.rel.end()
			return
		case <-l.stop:
			return
		case <-giveUp.C:
			l.failInvite(sip.StatusInternalServerError, fmt.Sprintf("no PRACK for our reliable %d within %s (RFC 3262)", p.res.StatusCode, 64*t1))
			return
		case <-again.C:
			if err := l.tx.Respond(p.res); err != nil {
				return // the INVITE has its final response
			}
			interval = min(2*interval, t2)
			again.Reset(interval)
		}
	}
}

// failInvite ends the INVITE with a final response of ours, code, when
// nothing has ended it yet, and tells call control: its own failure, not
// the caller's leaving.
func (l *leg) failInvite(code int, reason string) {
	l.mu.Lock()
	if l.final || l.answering || l.dlg.LoadState() >= sip.DialogStateEnded {
		l.mu.Unlock()
		return
	}
	l.final = true
	l.relErr = errors.New(reason)
	l.mu.Unlock()
	l.rel.end()
	err := l.tx.Respond(rejection(l.dlg.InviteRequest, code, reason))
	l.settle()
	switch {
	case errors.Is(err, sip.ErrTransactionCanceled):
		// The caller's CANCEL got there first and has its 487.
		l.emit(sb.LegEvent{Kind: sb.LegCanceled, Reason: "caller canceled"})
	case err != nil:
		l.log.Debug("final response to the INVITE", "code", code, "err", err)
		fallthrough
	default:
		l.log.Info("INVITE refused", "code", code, "reason", reason)
		l.emit(sb.LegEvent{Kind: sb.LegFailed, Code: code, Reason: reason})
	}
}

// awaitPRACK holds a 2xx back while a reliable provisional response with
// our offer awaits its PRACK (RFC 3262 §3), which carries the answer.
func (l *leg) awaitPRACK(ctx context.Context) error {
	p := l.rel.pendingOffer()
	if p == nil {
		return nil
	}
	select {
	case <-p.done:
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.relErr
	case <-ctx.Done():
		return ctx.Err()
	case <-l.byeSeen:
		return sb.ErrCanceled // an early BYE: the INVITE got 487
	case <-l.dlg.Context().Done():
		return sb.ErrCanceled
	case <-l.stop:
		return errors.New("the leg is closed")
	}
}

// onPrack takes a PRACK: in its dialog and in order, it is the leg's. A
// call we placed has none to take: we send its far end no 18x.
func (s *Server) onPrack(req *sip.Request, tx sip.ServerTransaction) {
	if l := s.legOrNone(req, tx); l != nil && l.inOrder(&l.dlg.Dialog, req, tx) {
		l.readPrack(req, tx)
	}
}

// readPrack acknowledges the response its RAck names, if that awaits its
// PRACK (481 otherwise), taking the answer to the offer it carried.
//
// Its RAck is matched before its body is read: a PRACK whose body we
// refuse still acknowledges its response, whose retransmissions end
// (they failed the INVITE after 64·T1).
func (l *leg) readPrack(req *sip.Request, tx sip.ServerTransaction) {
	p := l.matchPrack(req)
	if p == nil {
		l.s.respond(tx, rejection(req, sip.StatusCallTransactionDoesNotExists, "no reliable provisional response awaits this RAck"))
		return
	}
	sdp, be := sessionSDP(req)
	ok := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	switch {
	case p.offer:
		var err error
		switch {
		case be != nil:
			err = fmt.Errorf("the PRACK's body: %w", be)
		case sdp == nil:
			err = errors.New("the PRACK carried no answer to the offer in our reliable provisional response (RFC 3262 §5)")
		default:
			l.mu.Lock()
			err = l.takeLateAnswer("the PRACK", sdp)
			l.late = err != nil
			l.mu.Unlock()
		}
		l.s.respond(tx, ok) // the PRACK matched: 2xx, whatever its answer (§3)
		if err != nil {
			l.failInvite(sip.StatusNotAcceptableHere, err.Error())
		}
	case be != nil:
		// A body we refuse, where no answer was due: 400 or 415, though
		// the PRACK matched (see the comment at the top of the file).
		l.s.respond(tx, be.response(req))
	case sdp != nil:
		// An offer before the call is answered: as an early UPDATE's.
		l.s.respond(tx, notYetAnswered(req))
	default:
		l.s.respond(tx, ok)
	}
	l.acknowledged(p)
}

// matchPrack returns the response awaiting its PRACK that req's RAck
// names, taking it off the list of those awaited; nil when there is none.
func (l *leg) matchPrack(req *sip.Request) *provisional {
	h := req.GetHeader("RAck")
	if h == nil || !l.rel.on || l.dlg.LoadState() >= sip.DialogStateEnded {
		return nil
	}
	f := strings.Fields(h.Value())
	if len(f) != 3 {
		return nil
	}
	rseq, err1 := strconv.ParseUint(f[0], 10, 32)
	cseq, err2 := strconv.ParseUint(f[1], 10, 32)
	invite := l.dlg.InviteRequest.CSeq()
	if err1 != nil || err2 != nil || uint32(cseq) != invite.SeqNo || f[2] != string(invite.MethodName) {
		return nil
	}
	l.rel.mu.Lock()
	defer l.rel.mu.Unlock()
	p := l.rel.out
	if l.rel.over || p == nil || p.rseq != uint32(rseq) {
		return nil
	}
	l.rel.out = nil
	return p
}

// acknowledged ends p's retransmissions and sends the response waiting
// for its turn, if the INVITE has no final response yet.
func (l *leg) acknowledged(p *provisional) {
	p.settle()
	l.mu.Lock()
	final := l.final || l.answering
	l.mu.Unlock()
	l.rel.mu.Lock()
	if final || l.rel.over || l.rel.out != nil || len(l.rel.waiting) == 0 {
		l.rel.mu.Unlock()
		return
	}
	next := l.rel.waiting[0]
	l.rel.waiting = l.rel.waiting[1:]
	l.rel.start(next)
	l.rel.mu.Unlock()
	if err := l.transmit(next); err != nil {
		l.log.Debug("reliable provisional response not sent", "err", err)
	}
}
