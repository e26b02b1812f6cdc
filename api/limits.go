package api

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits on what one client may ask: API requests per credential, and
// failed logins per address and per account. They are kept in memory, per
// instance.

const (
	apiRate  = 20 // requests a second per API key or person
	apiBurst = 40

	addrFailures    = 20 // failed logins from one address...
	accountFailures = 5  // ...or for one account...
	failureWindow   = 5 * time.Minute
	lockFor         = 15 * time.Minute // ...lock further attempts this long

	maxTracked = 50000 // keys tracked before the idle are forgotten
)

type failures struct {
	count       int
	since       time.Time
	lockedUntil time.Time
}

type limits struct {
	now func() time.Time

	mu       sync.Mutex
	api      map[string]*rate.Limiter
	failures map[string]*failures
}

func newLimits(now func() time.Time) *limits {
	return &limits{now: now, api: map[string]*rate.Limiter{}, failures: map[string]*failures{}}
}

// allowAPI takes one request of a credential's budget.
func (l *limits) allowAPI(credential string) bool {
	l.mu.Lock()
	lim := l.api[credential]
	if lim == nil {
		if len(l.api) >= maxTracked {
			clear(l.api) // everyone starts again with a full bucket
		}
		lim = rate.NewLimiter(apiRate, apiBurst)
		l.api[credential] = lim
	}
	l.mu.Unlock()
	return lim.AllowN(l.now(), 1)
}

// accountKey names an account by a hash of its email: no email is kept.
func accountKey(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return "account:" + hex.EncodeToString(sum[:16])
}

// locked reports how long logins for these keys must wait, if any does.
func (l *limits) locked(keys ...string) time.Duration {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		if f := l.failures[k]; f != nil && now.Before(f.lockedUntil) {
			wait = max(wait, f.lockedUntil.Sub(now))
		}
	}
	return wait
}

// failed counts a failed login against each key; max is its allowance.
func (l *limits) failed(addr, account string) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) >= maxTracked {
		for k, f := range l.failures {
			if now.After(f.lockedUntil) && now.Sub(f.since) > failureWindow {
				delete(l.failures, k)
			}
		}
	}
	for _, c := range []struct {
		key string
		max int
	}{{"addr:" + addr, addrFailures}, {account, accountFailures}} {
		f := l.failures[c.key]
		if f == nil || now.Sub(f.since) > failureWindow {
			f = &failures{since: now}
			l.failures[c.key] = f
		}
		if f.count++; f.count >= c.max {
			f.lockedUntil, f.count, f.since = now.Add(lockFor), 0, now
		}
	}
}

// succeeded clears an account's failures.
func (l *limits) succeeded(account string) {
	l.mu.Lock()
	delete(l.failures, account)
	l.mu.Unlock()
}
