package sip

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sync"
	"time"
)

// nonceLifetime is how long a digest challenge may be answered.
const nonceLifetime = 5 * time.Minute

// maxAnswered bounds the nonces whose counts are kept. Only answers with
// the right password make an entry, so this is reached by trunks' traffic
// alone (hundreds of calls a second); beyond it, answers are challenged
// again until old nonces expire.
const maxAnswered = 200000

// nonces issues and checks digest nonces: the issue time, eight random
// bytes and an HMAC of both under a per-process key, so a nonce cannot be
// forged or used after it expires, and no two challenges share one (two
// calls challenged in the same second each answer their own nonce with
// nc=1). A challenge keeps no state; an answer does: the highest nonce
// count (nc) seen with each nonce, so that a captured Authorization cannot
// be sent again.
type nonces struct {
	key [32]byte

	mu        sync.Mutex
	answered  map[string]answeredNonce
	nextSweep time.Time
}

type answeredNonce struct {
	nc      int
	expires time.Time
}

func newNonces() (*nonces, error) {
	n := &nonces{answered: map[string]answeredNonce{}}
	if _, err := rand.Read(n.key[:]); err != nil {
		return nil, fmt.Errorf("sip: nonce key: %w", err)
	}
	return n, nil
}

func (n *nonces) issue(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.Unix()))
	rand.Read(b[8:])
	mac := hmac.New(sha256.New, n.key[:])
	mac.Write(b[:])
	return hex.EncodeToString(b[:]) + hex.EncodeToString(mac.Sum(nil)[:16])
}

// check reports whether nonce was issued by us (ours) and, if so,
// whether it has not expired (fresh).
func (n *nonces) check(nonce string, now time.Time) (ours, fresh bool) {
	raw, err := hex.DecodeString(nonce)
	if err != nil || len(raw) != 32 {
		return false, false
	}
	mac := hmac.New(sha256.New, n.key[:])
	mac.Write(raw[:16])
	if !hmac.Equal(raw[16:], mac.Sum(nil)[:16]) {
		return false, false
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(raw[:8])), 0)
	return true, !now.Before(issued.Add(-time.Minute)) && now.Sub(issued) < nonceLifetime
}

// answer records a correct answer to nonce with count nc (0 without
// qop). It reports false for a count not above every earlier answer's to
// the same nonce (a replay: stale), and for a nonce not seen before while
// the table is full (full: not stale, or the UAC would retry at once).
func (n *nonces) answer(nonce string, nc int, now time.Time) (ok, full bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if now.After(n.nextSweep) || len(n.answered) >= maxAnswered {
		for k, a := range n.answered {
			if now.After(a.expires) {
				delete(n.answered, k)
			}
		}
		n.nextSweep = now.Add(time.Minute)
	}
	last, seen := n.answered[nonce]
	if seen && nc <= last.nc {
		return false, false
	}
	if !seen && len(n.answered) >= maxAnswered {
		return false, true
	}
	n.answered[nonce] = answeredNonce{nc: nc, expires: now.Add(nonceLifetime + time.Minute)}
	return true, false
}
