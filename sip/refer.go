package sip

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	sb "github.com/switchboard-voice/switchboard"
)

// Blind transfer by REFER (RFC 3515, RFC 5589): the caller's side is asked
// to call the target itself and reports how it went in NOTIFYs carrying a
// status line (message/sipfrag); switchboard leaves the call once the
// target answered.

// referTimeout bounds the wait for the transfer's outcome.
const referTimeout = 32 * time.Second

// errNoRefer is a REFER that cannot be tried: the caller's side did not
// say it takes them.
var errNoRefer = errors.New("sip: the caller's side does not accept REFER")

// allowsRefer reports whether the INVITE's Allow header names REFER.
func allowsRefer(req *sip.Request) bool {
	for _, h := range req.GetHeaders("Allow") {
		for _, m := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(m), "REFER") {
				return true
			}
		}
	}
	return false
}

// Refer asks the caller's side to call uri in our place and returns nil
// once it reports the target answered. It returns an error, and the call
// stays ours, when the caller's side does not accept REFER, refuses it, or
// the transfer fails.
func (l *leg) Refer(ctx context.Context, uri string) error {
	if !allowsRefer(l.dlg.InviteRequest) {
		return errNoRefer
	}
	results := make(chan int, 8)
	l.mu.Lock()
	if !l.answered || l.closed {
		l.mu.Unlock()
		return errors.New("sip: REFER: the call is not up")
	}
	l.referred = results
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.referred = nil
		l.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(ctx, referTimeout)
	defer cancel()
	req := sip.NewRequest(sip.REFER, l.dlg.InviteRequest.Contact().Address)
	req.AppendHeader(sip.NewHeader("Refer-To", "<"+uri+">"))
	req.AppendHeader(sip.NewHeader("Referred-By", "<sip:switchboard@"+l.sdpIP.String()+">"))
	res, err := l.dlg.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("sip: REFER: %w", err)
	}
	if !res.IsSuccess() {
		return fmt.Errorf("sip: REFER refused: %d %s", res.StatusCode, res.Reason)
	}
	for {
		select {
		case code := <-results:
			switch {
			case code < 200:
			case code < 300:
				return nil
			default:
				return fmt.Errorf("sip: the transfer failed: %d", code)
			}
		case <-ctx.Done():
			return fmt.Errorf("sip: REFER: no outcome: %w", ctx.Err())
		case <-l.stop:
			return errors.New("sip: REFER: the call ended")
		}
	}
}

// onNotify takes a NOTIFY of a REFER's progress on one of our calls.
func (s *Server) onNotify(req *sip.Request, tx sip.ServerTransaction) {
	l := s.legOrNone(req, tx)
	if l == nil {
		return
	}
	event := req.GetHeader("Event")
	if event == nil || !strings.EqualFold(strings.TrimSpace(strings.Split(event.Value(), ";")[0]), "refer") {
		s.respond(tx, sip.NewResponseFromRequest(req, 489, "Bad Event", nil))
		return
	}
	code, ok := sipfragStatus(req.Body())
	if !ok {
		s.respond(tx, sip.NewResponseFromRequest(req, sip.StatusBadRequest, "Bad Request: the body is not a SIP status line", nil))
		return
	}
	s.respond(tx, sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	l.mu.Lock()
	results := l.referred
	l.mu.Unlock()
	if results != nil {
		select {
		case results <- code:
		default:
		}
	}
}

// sipfragStatus reads the status code of a message/sipfrag status line,
// "SIP/2.0 200 OK".
func sipfragStatus(body []byte) (int, bool) {
	line, _, _ := strings.Cut(string(body), "\n")
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "SIP/2.0" {
		return 0, false
	}
	code, err := strconv.Atoi(f[1])
	if err != nil || code < 100 || code > 699 {
		return 0, false
	}
	return code, true
}

var _ sb.Referrer = (*leg)(nil)
