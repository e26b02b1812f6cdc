package sip

import (
	"errors"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	sb "github.com/switchboard-voice/switchboard"
)

// maxSpentHops bounds the hand-over tokens remembered; tokens are signed
// by the cluster alone and live half a minute, so it is reached only by
// hundreds of hand-overs a second. Beyond it, hand-overs are refused and
// the calls stay where they are.
const maxSpentHops = 100000

// spentHops remembers the hand-over tokens taken, by the SIP Call-ID they
// are bound to, until they expire: each is good once.
type spentHops struct {
	mu        sync.Mutex
	expires   map[string]time.Time
	nextSweep time.Time
}

// spend reports whether the token bound to callID is taken now, for the
// first time.
func (s *spentHops) spend(callID string, expires, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.expires == nil {
		s.expires = map[string]time.Time{}
	}
	if _, spent := s.expires[callID]; spent {
		return false
	}
	if now.After(s.nextSweep) || len(s.expires) >= maxSpentHops {
		for id, e := range s.expires {
			if now.After(e) {
				delete(s.expires, id)
			}
		}
		s.nextSweep = now.Add(time.Minute)
	}
	if len(s.expires) >= maxSpentHops {
		return false
	}
	s.expires[callID] = expires
	return true
}

// hopOf reads a hand-over's token: nil when the INVITE carries none (or
// this instance is in no cluster), an error when it is not good: not
// signed by the cluster, expired, for another number or another INVITE
// (its Call-ID), or used before.
func (s *Server) hopOf(req *sip.Request) (*sb.Hop, error) {
	h := req.GetHeader(sb.HopHeader)
	if h == nil || len(s.conf.HopSecret) == 0 {
		return nil, nil
	}
	now := time.Now()
	hop, err := sb.OpenHop(s.conf.HopSecret, h.Value(), now)
	if err != nil {
		return nil, err
	}
	switch callID := req.CallID().Value(); {
	case hop.To != req.Recipient.User:
		return nil, errors.New("hop token for another number")
	case callID != sb.HopSIPCallID(h.Value()):
		return nil, errors.New("hop token for another INVITE")
	case !s.spentHops.spend(callID, hop.Expires, now):
		return nil, errors.New("hop token used before")
	}
	return hop, nil
}
