package sip

import (
	"fmt"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// What every request is checked for before its handler sees it, in the
// order RFC 3261 8.2 takes a request apart: a version we do not speak,
// then a message whose framing or identity is ambiguous, then a
// Request-URI we cannot serve. RFC 4475 (testdata/rfc4475) has a message
// for each.

// statusUnsupportedURIScheme is SIP's 416 (RFC 3261 21.4.15); sipgo names
// 416 after HTTP's meaning.
const statusUnsupportedURIScheme = 416

// singleHeaders may appear once only: two Call-IDs, CSeqs or
// Content-Lengths leave it open which transaction, dialog or body the
// message is (RFC 3261 7.3, 20; RFC 4475 3.3.8, 3.3.9).
var singleHeaders = [...]string{"Call-ID", "CSeq", "From", "To", "Max-Forwards", "Content-Length", "Content-Type"}

// inspect returns the final response that refuses req, or nil when its
// handler may take it.
func inspect(req *sip.Request) *sip.Response {
	if !strings.EqualFold(req.SipVersion, "SIP/2.0") {
		// RFC 3261 21.5.6 (ABNF literals are case-insensitive); the
		// answer is in the version we speak.
		res := rejection(req, sip.StatusVersionNotSupported, "only SIP/2.0 is spoken here")
		res.SipVersion = "SIP/2.0"
		return res
	}
	// One pass over the headers, nothing allocated: every request comes
	// through here.
	var seen [len(singleHeaders)]int
	for _, h := range req.Headers() {
		for i, name := range singleHeaders {
			if strings.EqualFold(h.Name(), name) {
				seen[i]++
			}
		}
	}
	for i, n := range seen {
		if n > 1 {
			return rejection(req, sip.StatusBadRequest, fmt.Sprintf("%d %s headers", n, singleHeaders[i]))
		}
	}
	if cseq := req.CSeq(); cseq != nil && methods[req.Method] && !strings.EqualFold(string(cseq.MethodName), string(req.Method)) {
		// RFC 3261 8.1.1.5: the CSeq method matches the request's (in
		// any case: sipgo upper-cases the request line's). A method we
		// do not know gets 501 whatever its CSeq says (RFC 4475
		// 3.1.2.18 prefers that to 400).
		return rejection(req, sip.StatusBadRequest, "the CSeq method is not the request's")
	}
	if scheme := req.Recipient.Scheme; scheme != "sip" && scheme != "sips" {
		return rejection(req, statusUnsupportedURIScheme, "Request-URI scheme "+scheme+" is not served here")
	}
	return nil
}

// methods are the methods defined by RFC 3261 and its extensions: one we
// do not take is refused with 405 and what we allow; any other method we
// do not recognise at all, and say so with 501 (RFC 3261 8.2.1, 21.5.2).
var methods = map[sip.RequestMethod]bool{
	sip.INVITE: true, sip.ACK: true, sip.CANCEL: true, sip.BYE: true, sip.OPTIONS: true, sip.REGISTER: true,
	sip.INFO: true, sip.NOTIFY: true, sip.SUBSCRIBE: true, sip.REFER: true, sip.MESSAGE: true,
	sip.PRACK: true, sip.UPDATE: true, sip.PUBLISH: true,
}

// notAllowed is the answer to a request whose method has no handler here.
func notAllowed(req *sip.Request) *sip.Response {
	code := sip.StatusMethodNotAllowed
	if !methods[req.Method] {
		code = sip.StatusNotImplemented
	}
	res := sip.NewResponseFromRequest(req, code, phrase(code), nil)
	res.AppendHeader(sip.NewHeader("Allow", allowed))
	return res
}
