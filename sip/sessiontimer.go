package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	sb "github.com/switchboard-voice/switchboard"
)

// Session timers (RFC 4028): a call is refreshed by re-INVITE or UPDATE
// every so often by one side, the refresher, and the other ends it when
// the refresh stops coming, so that a call whose far end vanished does
// not run on. Inbound, we take the caller's Session-Expires (refusing one
// below our Min-SE with 422, or raising it to our Min-SE when the caller
// does not support timers), let a caller that supports timers refresh
// unless it asks us to, and answer every refresh with the terms. On calls
// we place we ask for Session-Expires and follow the refresher the answer
// names. A refresher refreshes at half the interval; the other side ends
// the call min(32 s, interval/3) before the expiry (§10), through call
// control (LegSessionExpired), which sends the BYE and records why.

const (
	// statusIntervalTooBrief is 422 Session Interval Too Small.
	statusIntervalTooBrief = 422
	// defaultMinSE is RFC 4028's smallest session interval.
	defaultMinSE = 90 * time.Second
	// defaultSessionExpires is the interval we ask for on calls we place
	// (RFC 4028 §4 recommends 30 minutes).
	defaultSessionExpires = 30 * time.Minute
)

// timerTerms is what a request or response says of the session timer.
type timerTerms struct {
	interval  time.Duration // Session-Expires; zero: none
	refresher string        // "uac", "uas", or "" when not named
	minSE     time.Duration // Min-SE; zero: none
	supported bool          // its sender supports timers (Supported or Require)
}

// headered is a request or a response.
type headered interface {
	GetHeader(name string) sip.Header
	GetHeaders(name string) []sip.Header
	AppendHeader(h sip.Header)
}

// appendHeaders appends hs to m.
func appendHeaders(m headered, hs []sip.Header) {
	for _, h := range hs {
		m.AppendHeader(h)
	}
}

// readTimer reads the session timer's headers of m, compact forms too.
func readTimer(m headered) timerTerms {
	var t timerTerms
	h := m.GetHeader("Session-Expires")
	if h == nil {
		h = m.GetHeader("x")
	}
	if h != nil {
		v, params, _ := strings.Cut(h.Value(), ";")
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 31); err == nil && n > 0 {
			t.interval = time.Duration(n) * time.Second
			for _, p := range strings.Split(params, ";") {
				if k, val, _ := strings.Cut(p, "="); strings.EqualFold(strings.TrimSpace(k), "refresher") {
					t.refresher = strings.ToLower(strings.TrimSpace(val))
				}
			}
		}
	}
	if h := m.GetHeader("Min-SE"); h != nil {
		v, _, _ := strings.Cut(h.Value(), ";")
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 31); err == nil {
			t.minSE = time.Duration(n) * time.Second
		}
	}
	for _, name := range []string{"Supported", "k", "Require"} {
		for _, h := range m.GetHeaders(name) {
			for _, tag := range strings.Split(h.Value(), ",") {
				if strings.EqualFold(strings.TrimSpace(tag), "timer") {
					t.supported = true
				}
			}
		}
	}
	return t
}

func seconds(d time.Duration) string { return strconv.Itoa(int(d / time.Second)) }

// minSE is the smallest session interval we take.
func (s *Server) minSE() time.Duration {
	if s.conf.MinSE > 0 {
		return s.conf.MinSE
	}
	return defaultMinSE
}

// tooBrief is the 422 for a request whose session interval is below our
// Min-SE, or nil (RFC 4028 §6, §9). Only a requester that supports timers
// gets it: one that does not could not act on a 422 (§9 allows the 422
// only with Supported: timer), and its interval was put there by a proxy
// that refreshes nothing. Such an interval is raised to our Min-SE in the
// 2xx, and we refresh (legTimer.take).
func (s *Server) tooBrief(req *sip.Request) *sip.Response {
	t := readTimer(req)
	if t.interval == 0 || t.interval >= s.minSE() || !t.supported {
		return nil
	}
	res := sip.NewResponseFromRequest(req, statusIntervalTooBrief, phrase(statusIntervalTooBrief), nil)
	res.AppendHeader(sip.NewHeader("Min-SE", seconds(s.minSE())))
	return res
}

// timerHeaders are the headers of a 2xx that states the terms: the
// interval, which side of this transaction refreshes, and Require: timer
// when the requester supports timers (RFC 4028 §9).
func timerHeaders(interval time.Duration, uasRefreshes, require bool) []sip.Header {
	refresher := "uac"
	if uasRefreshes {
		refresher = "uas"
	}
	hs := []sip.Header{sip.NewHeader("Session-Expires", seconds(interval)+";refresher="+refresher)}
	if require {
		hs = append(hs, sip.NewHeader("Require", "timer"))
	}
	return hs
}

// legTimer is a leg's session timer: none until a request or answer
// asks for one, stopped when the leg closes.
type legTimer struct {
	mu     sync.Mutex
	timer  *sessionTimer
	stop   chan struct{}
	closed bool
}

// current returns the running timer, or nil.
func (lt *legTimer) current() *sessionTimer {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return lt.timer
}

// set starts the timer on these terms, or changes a running one's and
// counts as a refresh.
func (lt *legTimer) set(interval time.Duration, weRefresh bool, newTimer func() *sessionTimer) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if lt.closed {
		return
	}
	if lt.timer != nil {
		lt.timer.set(interval, weRefresh)
		return
	}
	lt.timer = newTimer()
	lt.timer.interval, lt.timer.weRefresh = interval, weRefresh
	lt.stop = make(chan struct{})
	go lt.timer.run(lt.stop)
}

// close stops the timer for good.
func (lt *legTimer) close() {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if !lt.closed && lt.stop != nil {
		close(lt.stop)
	}
	lt.closed = true
}

// sessionTimer refreshes the session when we are the refresher, and
// reports its expiry when the refresh does not come.
type sessionTimer struct {
	mu        sync.Mutex
	interval  time.Duration
	weRefresh bool
	kick      chan struct{} // a refresh came, or the terms changed

	// refresh sends our refresh and returns the terms of its 2xx.
	refresh func(ctx context.Context, interval time.Duration) (timerTerms, error)
	expire  func(interval time.Duration)
	log     *slog.Logger
	now     func() time.Time
}

func newSessionTimer(refresh func(context.Context, time.Duration) (timerTerms, error), expire func(time.Duration), log *slog.Logger) *sessionTimer {
	return &sessionTimer{kick: make(chan struct{}, 1), refresh: refresh, expire: expire, log: log, now: time.Now}
}

func (t *sessionTimer) set(interval time.Duration, weRefresh bool) {
	t.mu.Lock()
	t.interval, t.weRefresh = interval, weRefresh
	t.mu.Unlock()
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

func (t *sessionTimer) terms() (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.interval, t.weRefresh
}

// expiryMargin is how long before the session expires the side that does
// not refresh ends it (RFC 4028 §10).
func expiryMargin(interval time.Duration) time.Duration {
	return min(32*time.Second, interval/3)
}

// run is the timer's one goroutine, until stop.
func (t *sessionTimer) run(stop <-chan struct{}) {
	last, failed := t.now(), false
	for {
		interval, we := t.terms()
		due := last.Add(interval - expiryMargin(interval))
		refreshing := we && !failed
		if refreshing {
			due = last.Add(interval / 2)
		}
		wait := time.NewTimer(due.Sub(t.now()))
		select {
		case <-stop:
			wait.Stop()
			return
		case <-t.kick:
			wait.Stop()
			last, failed = t.now(), false
			continue
		case <-wait.C:
		}
		if !refreshing {
			t.expire(interval)
			return
		}
		// Answered in time to end the call before the expiry if it fails.
		ctx, cancel := context.WithTimeout(context.Background(), max(interval/2-expiryMargin(interval), 100*time.Millisecond))
		go func() {
			select {
			case <-stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		terms, err := t.refresh(ctx, interval)
		cancel()
		if err != nil {
			t.log.Info("session refresh failed: the call ends before the session expires", "err", err)
			failed = true
			continue
		}
		if terms.interval > 0 {
			// The 2xx's refresher is named for our request: uac is us.
			t.mu.Lock()
			t.interval, t.weRefresh = terms.interval, terms.refresher != "uas"
			t.mu.Unlock()
		}
		last = t.now()
	}
}

// takeTimer takes the session timer terms of a request the caller sent
// (the INVITE, a re-INVITE or an UPDATE): it starts or refreshes the
// timer and returns the headers the 2xx states them with. A request that
// asks for no timer on a call that has none gets none.
func (l *leg) takeTimer(req *sip.Request) []sip.Header {
	return l.timers.take(req, l.s.minSE(), func() *sessionTimer {
		return newSessionTimer(l.sendRefresh, func(interval time.Duration) {
			l.emit(sb.LegEvent{Kind: sb.LegSessionExpired, Reason: fmt.Sprintf("no session refresh within %s (RFC 4028)", interval)})
		}, l.log)
	})
}

// timerHeaders are the session timer headers of the 200 to the INVITE:
// Answer's hook.
func (l *leg) timerHeaders() []sip.Header { return l.takeTimer(l.dlg.InviteRequest) }

// take is takeTimer for either leg; minSE is our Min-SE.
//
// A requester that does not support timers and asks (through a proxy)
// for an interval below minSE gets minSE in the 2xx, and we refresh at
// it. Decided, against RFC 4028 §9's letter ("The UAS MUST NOT increase
// the value of the Session-Expires header field"): §9 says nothing else
// of this case, and taking the interval as it is had us, the refresher,
// refresh at half of whatever a proxy wrote (every 0.5 s for
// Session-Expires: 1), below the 90 s §4 and §5 set as the least any
// Min-SE may be. Raising it is what §8.1 has a proxy do for a UAC that
// does not support timers, and what erratum 1687 (held for document
// update) asks of a UAS; the proxy reads the interval from our 2xx
// (§8.2), so it expects our refreshes at the interval we state.
func (lt *legTimer) take(req *sip.Request, minSE time.Duration, newTimer func() *sessionTimer) []sip.Header {
	t := readTimer(req)
	if !t.supported && t.interval > 0 && t.interval < minSE {
		t.interval = minSE
	}
	running := lt.current()
	interval, weRefresh := t.interval, false
	switch {
	case interval == 0 && running == nil:
		return nil
	case interval == 0:
		// A refresh that names no terms keeps them.
		interval, weRefresh = running.terms()
	case !t.supported || t.refresher == "uas":
		// A requester that does not support timers cannot refresh.
		weRefresh = true
	case t.refresher == "uac":
	default:
		// Ours to choose: the requester, which supports timers, refreshes.
	}
	lt.set(interval, weRefresh, newTimer)
	return timerHeaders(interval, weRefresh, t.supported)
}

// sendRefresh refreshes the caller's session: UPDATE when the caller
// allows it, else a re-INVITE with our unchanged description.
func (l *leg) sendRefresh(ctx context.Context, interval time.Duration) (timerTerms, error) {
	l.mu.Lock()
	answered := l.answered // and so the dialog's answer is written
	l.mu.Unlock()
	if !answered {
		return timerTerms{}, errors.New("sip: session refresh: the call is not answered")
	}
	return refreshSession(ctx, interval, allows(l.dlg.InviteRequest, sip.UPDATE), l.dlg.InviteRequest.Contact().Address,
		l.doInvite, l.dlg.WriteRequest, l.port, l.applyRemote, l.currentSDP)
}

// refreshSession sends a refresh to target on a dialog (do, write):
// UPDATE without SDP if update, else a re-INVITE with our description as
// body gives it (unchanged, so its version is too); once more with a
// longer interval after a 422. It returns the terms of its 2xx.
func refreshSession(ctx context.Context, interval time.Duration, update bool, target sip.Uri, do sendFunc,
	write func(*sip.Request) error, port *rtpPort, take func(*offer), body func() []byte) (timerTerms, error) {
	method := sip.INVITE
	if update {
		method = sip.UPDATE
	}
	for attempt := 0; ; attempt++ {
		hs := []sip.Header{sip.NewHeader("Session-Expires", seconds(interval)+";refresher=uac"), sip.NewHeader("Supported", "timer")}
		var res *sip.Response
		var err error
		if update {
			req := sip.NewRequest(sip.UPDATE, target)
			appendHeaders(req, hs)
			res, err = do(ctx, req, nil)
		} else {
			res, err = inviteInDialog(ctx, target, body, do, write, port, take, hs...)
		}
		if err != nil {
			return timerTerms{}, err
		}
		if t := readTimer(res); res.StatusCode == statusIntervalTooBrief && t.minSE > interval && attempt == 0 {
			interval = t.minSE
			continue
		}
		if res.StatusCode == sip.StatusRequestPending && attempt < 2 {
			// Our refresh crossed another offer (a hold): try again a
			// moment later (RFC 3261 §14.1), well before we would have to
			// give up on the session.
			wait := 2 * time.Second
			if deadline, ok := ctx.Deadline(); ok {
				wait = min(wait, time.Until(deadline)/4)
			}
			select {
			case <-time.After(wait/2 + rand.N(wait/2+1)):
				continue
			case <-ctx.Done():
				return timerTerms{}, ctx.Err()
			}
		}
		if !res.IsSuccess() {
			return timerTerms{}, fmt.Errorf("sip: session refresh (%s) answered %d %s", method, res.StatusCode, res.Reason)
		}
		t := readTimer(res)
		if t.interval == 0 {
			t.interval, t.refresher = interval, "uac"
		}
		return t, nil
	}
}

// errOfferTaken marks a re-INVITE's failure after its 2xx: the far end
// took our offer, so what it has is the offer's description, whatever we
// make of its answer (RFC 3264 §8: our next offer's version follows it).
var errOfferTaken = errors.New("sip: re-INVITE taken")

// inviteInDialog sends an in-dialog INVITE with the body describe makes
// (with the leg's lock held: legBase.sending) and extra headers, ACKs its
// 2xx and has the leg take a usable answer (its address and direction).
// It returns the final response, a non-2xx one too.
func inviteInDialog(ctx context.Context, target sip.Uri, describe func() []byte, do sendFunc,
	write func(*sip.Request) error, port *rtpPort, take func(answer *offer), extra ...sip.Header) (*sip.Response, error) {
	req := sip.NewRequest(sip.INVITE, target)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	appendHeaders(req, extra)
	res, err := do(ctx, req, describe)
	if err != nil {
		return nil, fmt.Errorf("sip: re-INVITE: %w", err)
	}
	if !res.IsSuccess() {
		return res, nil
	}
	ack := sip.NewRequest(sip.ACK, target)
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: req.CSeq().SeqNo, MethodName: sip.ACK})
	if err := write(ack); err != nil {
		return nil, fmt.Errorf("%w: ACK: %w", errOfferTaken, err)
	}
	sdp, be := sessionSDP(res)
	if be != nil {
		return nil, fmt.Errorf("%w: its answer: %s", errOfferTaken, be.reason)
	}
	a, r := answerOf(sdp, port)
	switch {
	case r != nil && r.code == sip.StatusBadRequest:
		return res, nil // the answer changes nothing we can use
	case r != nil:
		return nil, fmt.Errorf("%w: its answer: %s", errOfferTaken, r.reason)
	}
	take(a)
	return res, nil
}

// The calls we place.

// timerOffer are the headers of our INVITE that ask for a session timer
// and say which extensions we take.
func (s *Server) timerOffer() []sip.Header {
	se := s.conf.SessionExpires
	if se <= 0 {
		se = defaultSessionExpires
	}
	se = max(se, s.minSE())
	return []sip.Header{
		sip.NewHeader("Supported", "100rel, timer"),
		sip.NewHeader("Session-Expires", seconds(se)),
		sip.NewHeader("Min-SE", seconds(s.minSE())),
	}
}

// askLonger sends our INVITE again, once, when it was refused with 422:
// asking for the far end's Min-SE (RFC 4028 §7.4). It reports whether it
// did, and the answer is then to be waited for again.
func (l *outLeg) askLonger(ctx context.Context, err error) bool {
	var de *sipgo.ErrDialogResponse
	if !errors.As(err, &de) || de.Res.StatusCode != statusIntervalTooBrief || l.askedLonger {
		return false
	}
	req := l.dlg.InviteRequest
	theirs, ours := readTimer(de.Res).minSE, readTimer(req).interval
	if theirs <= ours {
		return false
	}
	l.askedLonger = true
	req.RemoveHeader("Session-Expires")
	req.RemoveHeader("Min-SE")
	req.AppendHeader(sip.NewHeader("Session-Expires", seconds(theirs)))
	req.AppendHeader(sip.NewHeader("Min-SE", seconds(theirs)))
	req.CSeq().SeqNo++
	req.RemoveHeader("Via") // a new transaction
	if err := l.dlg.Invite(ctx); err != nil {
		l.log.Info("INVITE with a longer session interval not sent", "err", err)
		return false
	}
	return true
}

// startTimer follows the session timer the 2xx to our INVITE states: we
// refresh unless it names the far end (uas). A 2xx without one has none.
func (l *outLeg) startTimer(res *sip.Response) {
	t := readTimer(res)
	if t.interval == 0 {
		return
	}
	l.timers.set(t.interval, t.refresher != "uas", l.newTimer)
}

func (l *outLeg) newTimer() *sessionTimer {
	return newSessionTimer(l.sendRefresh, func(interval time.Duration) {
		l.emit(sb.LegEvent{Kind: sb.LegSessionExpired, Reason: fmt.Sprintf("no session refresh within %s (RFC 4028)", interval)})
	}, l.log)
}

// takeTimer is the session timer terms of a request the far end of a
// call we placed sent; see leg.takeTimer.
func (l *outLeg) takeTimer(req *sip.Request) []sip.Header {
	return l.timers.take(req, l.s.minSE(), l.newTimer)
}

// sendRefresh refreshes a call we placed: UPDATE when the far end allows
// it, else a re-INVITE with our unchanged description.
func (l *outLeg) sendRefresh(ctx context.Context, interval time.Duration) (timerTerms, error) {
	target := l.dlg.InviteRequest.Recipient
	if c := l.dlg.InviteResponse.Contact(); c != nil {
		target = c.Address
	}
	return refreshSession(ctx, interval, allows(l.dlg.InviteResponse, sip.UPDATE), target, l.doInvite, l.dlg.WriteRequest, l.port, l.followAnswer, func() []byte {
		return l.describe("") // l.mu is held (legBase.sending)
	})
}
