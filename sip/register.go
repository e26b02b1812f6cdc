package sip

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	sb "github.com/switchboard-voice/switchboard"
)

// registration timing: refresh well before expiry; retry a failure after a
// while, not at once (a registrar that refuses should not be flooded).
const (
	registerExpiry = 3600
	retryAfter     = 30 * time.Second
)

// registrations keeps each trunk's registration loop and state.
type registrations struct {
	mu    sync.Mutex
	loops map[sb.ID]context.CancelFunc
	state map[sb.ID]sb.Registration
}

// Register keeps route's trunk registered with its target (REGISTER with
// digest credentials, refreshed before it expires) until Unregister or
// Close. Registering again replaces the earlier loop.
func (s *Server) Register(route sb.OutboundRoute) {
	ctx, cancel := context.WithCancel(context.Background())
	s.regs.mu.Lock()
	if stop := s.regs.loops[route.TrunkID]; stop != nil {
		stop()
	}
	s.regs.loops[route.TrunkID] = cancel
	s.regs.state[route.TrunkID] = sb.Registration{State: sb.RegRegistering, At: time.Now()}
	s.regs.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.keepRegistered(ctx, route)
	}()
}

// Unregister stops keeping the trunk registered.
func (s *Server) Unregister(trunkID sb.ID) {
	s.regs.mu.Lock()
	defer s.regs.mu.Unlock()
	if stop := s.regs.loops[trunkID]; stop != nil {
		stop()
	}
	delete(s.regs.loops, trunkID)
	delete(s.regs.state, trunkID)
}

// RegistrationState says where the trunk's registration stands; ok is
// false for a trunk that does not register.
func (s *Server) RegistrationState(trunkID sb.ID) (sb.Registration, bool) {
	s.regs.mu.Lock()
	defer s.regs.mu.Unlock()
	r, ok := s.regs.state[trunkID]
	return r, ok
}

func (s *Server) setRegistration(trunkID sb.ID, r sb.Registration) {
	s.regs.mu.Lock()
	defer s.regs.mu.Unlock()
	if _, ok := s.regs.loops[trunkID]; ok {
		s.regs.state[trunkID] = r
	}
}

// regSession is what every REGISTER of one trunk shares (RFC 3261
// 10.2): one Call-ID and From tag, and rising CSeq numbers.
type regSession struct {
	callID  sip.CallIDHeader
	fromTag string
	cseq    uint32
}

func (s *Server) keepRegistered(ctx context.Context, route sb.OutboundRoute) {
	log := s.log.With("trunk", route.TrunkID, "registrar", route.Target)
	sess := &regSession{callID: sip.CallIDHeader(sb.NewID().String()), fromTag: sip.GenerateTagN(16)}
	for {
		granted, code, err := s.register(ctx, route, sess)
		now := time.Now()
		wait := retryAfter
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("registration failed", "code", code, "err", err)
			s.setRegistration(route.TrunkID, sb.Registration{State: sb.RegFailed, LastCode: code, LastError: err.Error(), At: now})
		} else {
			s.setRegistration(route.TrunkID, sb.Registration{State: sb.RegRegistered, Expires: now.Add(granted), LastCode: code, At: now})
			// Refresh halfway for short grants, a minute early for long.
			wait = max(granted/2, granted-time.Minute)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// register sends one REGISTER, answering a challenge, and returns the
// expiry the registrar granted.
func (s *Server) register(ctx context.Context, r sb.OutboundRoute, sess *regSession) (time.Duration, int, error) {
	host, portStr, err := net.SplitHostPort(r.Target)
	if err != nil {
		return 0, 0, fmt.Errorf("registrar %q is not host:port", r.Target)
	}
	port, _ := strconv.Atoi(portStr)
	local, _, err := routeTo(r.Target)
	if err != nil {
		return 0, 0, err
	}
	user := r.Username
	if user == "" {
		user = "switchboard"
	}
	transport := strings.ToLower(r.Transport)
	if transport == "" {
		transport = "udp"
	}
	aor := sip.Uri{Scheme: "sip", User: user, Host: host}
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: host, Port: port})
	req.SetTransport(strings.ToUpper(transport))
	params := sip.NewParams()
	params.Add("tag", sess.fromTag)
	req.AppendHeader(&sip.FromHeader{Address: aor, Params: params})
	req.AppendHeader(&sip.ToHeader{Address: aor})
	callID := sess.callID
	req.AppendHeader(&callID)
	sess.cseq++
	req.AppendHeader(&sip.CSeqHeader{SeqNo: sess.cseq, MethodName: sip.REGISTER})
	s.mu.Lock()
	listener := s.udpAddr
	s.mu.Unlock()
	contactPort := 0
	if transport == "udp" && listener.IsValid() {
		req.Laddr = sip.Addr{IP: listener.Addr().AsSlice(), Port: int(listener.Port())}
		contactPort = int(listener.Port())
	}
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: local.String(), Port: contactPort}})
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(registerExpiry)))
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := s.client.Do(ctx, req)
	if err != nil {
		return 0, 0, fmt.Errorf("REGISTER: %w", err)
	}
	if res.StatusCode == sip.StatusUnauthorized || res.StatusCode == sip.StatusProxyAuthRequired {
		if res, err = s.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: r.Username, Password: r.Password}); err != nil {
			return 0, 0, fmt.Errorf("REGISTER with credentials: %w", err)
		}
		if c := req.CSeq(); c != nil && c.SeqNo > sess.cseq {
			sess.cseq = c.SeqNo // the authenticated retry took the next number
		}
	}
	if !res.IsSuccess() {
		return 0, res.StatusCode, fmt.Errorf("REGISTER answered %d %s", res.StatusCode, res.Reason)
	}
	return grantedExpiry(res), res.StatusCode, nil
}

// grantedExpiry is what a registrar's 200 grants: the Contact's expires
// parameter, else the Expires header, else what we asked for.
func grantedExpiry(res *sip.Response) time.Duration {
	secs := registerExpiry
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil {
			secs = n
		}
	}
	if c := res.Contact(); c != nil {
		if v, ok := c.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil {
				secs = n
			}
		}
	}
	return time.Duration(max(secs, 1)) * time.Second
}
