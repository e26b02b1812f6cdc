package sip

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	sb "github.com/switchboard-voice/switchboard"
)

// lookupTimeout bounds the directory lookups made while an INVITE waits.
const lookupTimeout = 5 * time.Second

// onInvite takes a new call: recognise the trunk, check the number and
// the offer, answer 100 Trying, open the RTP port and hand the leg to call
// control. It returns when the INVITE has its final response, so sipgo
// keeps the transaction until then.
func (s *Server) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		s.onReinvite(req, tx)
		return
	}
	for name, missing := range map[string]bool{"From": req.From() == nil, "To": req.To() == nil, "Call-ID": req.CallID() == nil} {
		if missing {
			s.reject(req, tx, sip.StatusBadRequest, "missing "+name+" header")
			return
		}
	}
	// Behind a trusted front-end, the source is the one it names.
	origin, err := s.originOf(req)
	src := origin.addr
	if err != nil {
		s.reject(req, tx, sip.StatusBadRequest, "unreadable source address")
		return
	}
	number := req.Recipient.User
	hop, err := s.hopOf(req)
	if err != nil {
		s.shield.failed(src.Addr())
		s.log.Info("INVITE refused: bad hop token", "source", src, "err", err)
		s.reject(req, tx, sip.StatusForbidden, "forbidden")
		return
	}
	if hop == nil && (s.Behind() || s.conf.Overloaded != nil && s.conf.Overloaded()) {
		// Only new calls are shed: a hand-over is a call already
		// answered, and its record is written by the instance it comes
		// from; requests within a dialog never come here. Not recorded:
		// a record is work for a service already behind. The SIP metrics
		// count the 503s.
		res := sip.NewResponseFromRequest(req, sip.StatusServiceUnavailable, phrase(503), nil)
		res.AppendHeader(sip.NewHeader("Retry-After", overloadRetryAfter))
		s.respond(tx, res)
		return
	}
	var trunk *sb.Trunk
	if hop != nil {
		// Another instance's call: it checked the trunk and the number.
		trunk = &sb.Trunk{TenantID: hop.TenantID, Name: "instance " + hop.Instance, Numbers: []string{number}}
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
		trunk, err = s.identifyTrunk(ctx, req, src.Addr().Unmap(), number)
		cancel()
	}
	switch {
	case errors.Is(err, errChallenge):
		s.challenge(req, tx, errors.Is(err, errStale))
		return
	case errors.Is(err, errForbidden):
		s.shield.failed(src.Addr())
		s.log.Info("INVITE refused: unknown trunk or bad credentials", "source", src)
		s.reject(req, tx, sip.StatusForbidden, "forbidden")
		if trunk != nil && s.authFailures.allow(trunk.ID, time.Now()) {
			// A known trunk's PBX with a wrong password: its tenant sees the
			// refusal, at most once per trunk every few seconds, so that a
			// password guesser cannot make the service write rows.
			s.disp.RecordRefused(&sb.RefusedCall{Trunk: trunk, From: req.From().Address.User, To: number,
				Source: origin.String(), SIPCallID: req.CallID().Value(),
				Code: sip.StatusForbidden, Reason: "digest authentication failed", Leg: sb.FailedOnTrunk, Stage: sb.StageAuth,
				Trace: s.capture.release(req.CallID().Value())})
		}
		return
	case err != nil:
		s.log.Error("INVITE: trunk lookup failed", "err", err)
		res := sip.NewResponseFromRequest(req, sip.StatusServiceUnavailable, phrase(503), nil)
		res.AppendHeader(sip.NewHeader("Retry-After", "30"))
		s.respond(tx, res)
		return
	}
	s.shield.trust(src.Addr())
	// Once the sender is known (a stranger gets 403 whatever it sends).
	release, merged := s.invites.open(req)
	if merged {
		s.reject(req, tx, sip.StatusLoopDetected, "the same INVITE came by another path (RFC 3261 §8.2.2.2)")
		return
	}
	defer release()
	log := s.log.With("trunk", trunk.ID, "sip_call_id", req.CallID().Value())
	// From here on a refusal is a call of the trunk's tenant, recorded.
	refuse := func(res *sip.Response, reason, leg, stage string) {
		code := res.StatusCode
		if err := tx.Respond(res); errors.Is(err, sip.ErrTransactionCanceled) {
			// The caller's CANCEL came first and has its 487: the
			// caller gave up before we could refuse.
			code, reason, leg, stage = sip.StatusRequestTerminated, "caller canceled", sb.FailedOnTrunk, sb.StageRinging
		} else if err != nil {
			s.log.Debug("sending SIP response failed", "code", code, "err", err)
		}
		s.disp.RecordRefused(&sb.RefusedCall{Trunk: trunk, From: req.From().Address.User, To: number,
			Source: origin.String(), SIPCallID: req.CallID().Value(),
			Code: code, Reason: reason, Leg: leg, Stage: stage, Trace: s.capture.release(req.CallID().Value())})
	}
	if !trunk.HasNumber(number) {
		log.Info("INVITE refused: number not on trunk", "number", sb.MaskNumber(number))
		refuse(rejection(req, sip.StatusNotFound, "number not served here"), "number not served here", sb.FailedOnTrunk, sb.StageRouting)
		return
	}

	if res := s.tooBrief(req); res != nil {
		refuse(res, "session interval too small", sb.FailedOnTrunk, sb.StageOffer)
		return
	}

	body := req.Body()
	offerRefused := func(code int, reason string) {
		refuse(rejection(req, code, reason), reason, sb.FailedOnTrunk, sb.StageOffer)
	}
	if req.Contact() == nil {
		// An RFC 2543 INVITE may lack it (RFC 4475 3.4.1) and is routed
		// like any other; a call needs it to reach the caller later.
		offerRefused(sip.StatusBadRequest, "missing Contact header")
		return
	}
	if cl := req.ContentLength(); cl != nil && int(*cl) != len(body) {
		offerRefused(sip.StatusBadRequest, "Content-Length does not match the body")
		return
	}
	if !acceptsSDP(req) {
		offerRefused(sip.StatusNotAcceptable, "the Accept header leaves out application/sdp, which our answer is")
		return
	}
	if len(body) > maxBody {
		offerRefused(sip.StatusNotAcceptableHere, "SDP body too large")
		return
	}
	sdp, be := sessionSDP(req)
	if be != nil {
		refuse(be.response(req), be.reason, sb.FailedOnTrunk, sb.StageOffer)
		return
	}
	// An INVITE without a session description is a late offer: ours goes
	// in the 200 OK, the caller's answer comes in the ACK.
	late := sdp == nil
	o, err := &offer{Codec: sb.PCMU, Direction: "sendrecv"}, error(nil)
	if !late {
		o, err = parseOffer(sdp)
	}
	if err != nil {
		r := refused(err)
		if r.code == sip.StatusNotAcceptableHere {
			log.Info("INVITE refused: media not acceptable", "err", err)
		}
		refuse(r.response(req), r.reason, sb.FailedOnTrunk, sb.StageOffer)
		return
	}
	var sec *srtpSession
	if o.Crypto != nil {
		if sec, err = newSRTPSession(*o.Crypto); err != nil {
			log.Error("INVITE: SRTP", "err", err)
			offerRefused(sip.StatusNotAcceptableHere, "the SRTP key could not be used")
			return
		}
	}

	local := localAddr(tx, src)
	transport := strings.ToLower(req.Transport())
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "switchboard", Host: local.Addr().String(), Port: int(local.Port())}}
	if transport != "udp" {
		contact.Address.UriParams = sip.HeaderParams{}
		contact.Address.UriParams.Add("transport", transport)
	}
	if transport == "tls" {
		contact.Address.Scheme = "sips"
	}
	// The dialog is read before the 100 goes out: a CANCEL, which a
	// caller sends once it has a provisional response, then finds it.
	dua := &sipgo.DialogUA{Client: s.client, ContactHDR: contact, RewriteContact: true}
	dlg, err := dua.ReadInvite(req, tx)
	if err != nil {
		offerRefused(sip.StatusBadRequest, err.Error())
		return
	}
	s.respond(tx, sip.NewResponseFromRequest(req, sip.StatusTrying, "Trying", nil))
	conn, err := listenRTP(local.Addr(), s.conf.RTPPorts)
	if err != nil {
		log.Error("INVITE: no RTP port", "err", err)
		refuse(rejection(req, sip.StatusServiceUnavailable, "no media port available"), "no media port available", sb.FailedOnService, sb.StageMediaSetup)
		return
	}
	sdpIP := local.Addr()
	if s.conf.PublicIP.IsValid() {
		sdpIP = s.conf.PublicIP
	}
	s.capture.claim(req.CallID().Value())
	s.mu.Lock()
	logged := s.loggedTrunk[trunk.ID]
	s.mu.Unlock()
	if logged {
		lctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
		s.SetCallLogging(lctx, trunk.TenantID, req.CallID().Value(), true)
		cancel()
	}
	var port *rtpPort
	suite := srtpSuite(sec)
	if o.ICE != nil {
		if port, err = s.iceForOffer(conn, o, log); err != nil {
			conn.Close()
			log.Error("INVITE: DTLS-SRTP", "err", err)
			refuse(rejection(req, sip.StatusServiceUnavailable, "media setup failed"), "DTLS-SRTP media could not be set up", sb.FailedOnService, sb.StageMediaSetup)
			return
		}
		suite = "DTLS-SRTP"
	} else {
		port = newRTPPort(conn, o.Codec, o.Addr, src.Addr(), sec, &s.rtpDrops)
	}
	l := newLeg(s, dlg, tx, port, contact, sdpIP, o, log)
	if port.ice != nil {
		port.ice.failed = func(reason string) { l.emit(sb.LegEvent{Kind: sb.LegMediaFailed, Reason: reason}) }
	}
	l.late = late
	if !s.addLeg(l) {
		l.port.Close()
		s.capture.release(req.CallID().Value())
		s.reject(req, tx, sip.StatusServiceUnavailable, "shutting down")
		return
	}
	log.Debug("INVITE accepted", "codec", o.Codec.Name, "rtp", l.port.LocalAddr())
	s.disp.DispatchInbound(&sb.InboundCall{
		Trunk:     trunk,
		From:      req.From().Address.User,
		To:        number,
		Source:    origin.String(),
		SIPCallID: req.CallID().Value(),
		Leg:       l,
		Consent:   consentOf(req, trunk, time.Now()),
		Hop:       hop,
		SRTP:      suite,
		Hops:      sb.HopsAfter(maxForwards(req)),
	})
	<-l.settled
}

// iceForOffer readies a DTLS-SRTP leg's port for an offer: our ICE agent
// on conn, answering the offer's role.
func (s *Server) iceForOffer(conn *net.UDPConn, o *offer, log *slog.Logger) (*rtpPort, error) {
	id, err := s.dtlsIdentity()
	if err != nil {
		return nil, err
	}
	t, err := newICETransport(conn, id, s.conf.PublicIP, log)
	if err != nil {
		return nil, err
	}
	t.answering(o.ICE, o.Proto)
	return newICEPort(conn, o.Codec, t, &s.rtpDrops), nil
}

// ConsentHeader is the header in which a PBX states the caller's recording
// consent: yes or no.
const ConsentHeader = "X-Recording-Consent"

// consentOf reads the call's recording consent: the PBX's header if it
// sent one, else the trunk's standing assertion, else nothing.
func consentOf(req *sip.Request, trunk *sb.Trunk, now time.Time) *sb.Consent {
	if h := req.GetHeader(ConsentHeader); h != nil {
		switch strings.ToLower(strings.TrimSpace(h.Value())) {
		case "yes", "true", "1", "granted":
			return &sb.Consent{Given: true, Mechanism: sb.ConsentSIPHeader, At: now, By: "trunk " + trunk.Name}
		case "no", "false", "0", "denied", "withdrawn":
			return &sb.Consent{Given: false, Mechanism: sb.ConsentSIPHeader, At: now, By: "trunk " + trunk.Name}
		}
	}
	if trunk.RecordingConsent {
		return &sb.Consent{Given: true, Mechanism: sb.ConsentTrunkPolicy, At: now, By: "trunk " + trunk.Name}
	}
	return nil
}

// localAddr is the address the request arrived on: the connection's, or,
// for a socket bound to all addresses, the one the system would use to
// reach the sender.
func localAddr(tx sip.ServerTransaction, src netip.AddrPort) netip.AddrPort {
	var local netip.AddrPort
	if c, ok := tx.(interface{ Connection() sip.Connection }); ok && c.Connection() != nil {
		if ap, err := netip.ParseAddrPort(c.Connection().LocalAddr().String()); err == nil {
			local = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
	}
	if local.Addr().IsValid() && !local.Addr().IsUnspecified() {
		return local
	}
	if probe, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(src)); err == nil {
		ap := probe.LocalAddr().(*net.UDPAddr).AddrPort()
		probe.Close()
		return netip.AddrPortFrom(ap.Addr().Unmap(), local.Port())
	}
	return netip.AddrPortFrom(netip.IPv4Unspecified(), local.Port())
}

// onReinvite handles an INVITE inside a dialog: hold, resume, a new
// media address, a session refresh; without SDP, our offer goes in the
// 200 and the answer comes in the ACK (offeranswer.go).
func (s *Server) onReinvite(req *sip.Request, tx sip.ServerTransaction) {
	l := s.inDialog(req, tx)
	if l == nil {
		return
	}
	sdp, be := sessionSDP(req)
	switch {
	case be != nil:
		s.respond(tx, be.response(req))
	case sdp == nil:
		s.offerInOK(l, req, tx)
	default:
		s.answerOffer(l, req, tx, sdp)
	}
}

// newSessionID returns an SDP session id.
func newSessionID() uint64 { return rand.Uint64N(1 << 62) }

// acceptsSDP reports whether req's Accept headers, if any, take
// application/sdp, the body of our answer (RFC 3261 20.1: an empty Accept
// takes nothing).
func acceptsSDP(req *sip.Request) bool {
	accept := req.GetHeaders("Accept")
	if len(accept) == 0 {
		return true
	}
	for _, h := range accept {
		for _, t := range strings.Split(h.Value(), ",") {
			t, _, _ = strings.Cut(t, ";")
			switch strings.ToLower(strings.TrimSpace(t)) {
			case "application/sdp", "application/*", "*/*":
				return true
			}
		}
	}
	return false
}

// maxForwards is req's Max-Forwards, 70 when it has none (RFC 3261 §8.1.1.6).
func maxForwards(req *sip.Request) int {
	if h := req.MaxForwards(); h != nil {
		return int(h.Val())
	}
	return 70
}
