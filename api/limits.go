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
	// socketBurst is an operator socket's burst at the API's rate: a
	// browser trickles its ICE candidates at once when it connects.
	socketBurst = 60

	addrFailures    = 20 // failed logins from one address...
	accountFailures = 5  // ...or for one account...
	failureWindow   = 5 * time.Minute
	lockFor         = 15 * time.Minute // ...lock further attempts this long

	maxTracked = 50000 // keys tracked before the idle are forgotten

	// WhatsApp call permission requests a tenant may send: ten a minute.
	permissionBurst = 10
)

var permissionRate = rate.Every(6 * time.Second)

type failures struct {
	count       int
	since       time.Time
	lockedUntil time.Time
	// refused: an attempt was refused during this lock (the first is
	// audited, the rest are not: see attempt).
	refused bool
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
	return l.allow(credential, apiRate, apiBurst)
}

// allowPermissionRequest takes one of the tenant's WhatsApp call
// permission requests: each is a message the business pays for.
func (l *limits) allowPermissionRequest(tenantID string) bool {
	return l.allow("whatsapp-permission:"+tenantID, permissionRate, permissionBurst)
}

// allow takes one of key's budget of r a second with bursts of burst.
func (l *limits) allow(key string, r rate.Limit, burst int) bool {
	l.mu.Lock()
	lim := l.api[key]
	if lim == nil {
		if len(l.api) >= maxTracked {
			clear(l.api) // everyone starts again with a full bucket
		}
		lim = rate.NewLimiter(r, burst)
		l.api[key] = lim
	}
	l.mu.Unlock()
	return lim.AllowN(l.now(), 1)
}

// accountKey names an account by a hash of its email: no email is kept.
func accountKey(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return "account:" + hex.EncodeToString(sum[:16])
}

// attempt counts a login attempt against its address and account before
// the password is checked, so that attempts made together cannot pass the
// allowance; the one that reaches it locks both. If either is locked
// already it counts nothing and says how long to wait, and first says
// whether it is the first attempt that lock refused: refusals cost a
// sender nothing, so only the first of each lock goes to the audit log,
// which nobody may trim, and a stranger cannot fill it.
func (l *limits) attempt(addr, account string) (wait time.Duration, first bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	keys := []struct {
		key string
		max int
	}{{"addr:" + addr, addrFailures}, {account, accountFailures}}
	for _, k := range keys {
		if f := l.failures[k.key]; f != nil && now.Before(f.lockedUntil) {
			wait = max(wait, f.lockedUntil.Sub(now))
			first = first || !f.refused
			f.refused = true
		}
	}
	if wait > 0 {
		return wait, first
	}
	if len(l.failures) >= maxTracked {
		for k, f := range l.failures {
			if now.After(f.lockedUntil) && now.Sub(f.since) > failureWindow {
				delete(l.failures, k)
			}
		}
	}
	for _, k := range keys {
		f := l.failures[k.key]
		if f == nil || now.Sub(f.since) > failureWindow {
			f = &failures{since: now}
			l.failures[k.key] = f
		}
		if f.count++; f.count >= k.max {
			f.lockedUntil, f.count, f.since, f.refused = now.Add(lockFor), 0, now, false
		}
	}
	return 0, false
}

// succeeded clears an account's failures and takes a successful attempt
// off its address's count.
func (l *limits) succeeded(addr, account string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, account)
	l.uncountLocked("addr:" + addr)
}

// unchecked takes an attempt whose password could not be checked (the
// store failed) off both counts: it was no guess, and an outage must not
// lock people out.
func (l *limits) unchecked(addr, account string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.uncountLocked("addr:"+addr, account)
}

func (l *limits) uncountLocked(keys ...string) {
	for _, k := range keys {
		if f := l.failures[k]; f != nil && f.count > 0 {
			f.count--
		}
	}
}
