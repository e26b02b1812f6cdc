package metadata

import (
	"context"
	"net/netip"
	"sync"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// What calls need to be routed is read from the database on every call,
// and kept: while the database is unreachable, the last answer given for
// the same question (not older than maxAge) routes the call instead, so a
// trunk that called before the outage is still recognised and its numbers
// still reach their queues. Only answers that found something are kept,
// so the memory is bounded by the trunks and numbers that called, not by
// who scans the port. A question never answered before still fails.

// lastGood keeps the last answer per key.
type lastGood[K comparable, V any] struct {
	mu     sync.Mutex
	maxAge time.Duration
	now    func() time.Time
	m      map[K]kept[V]
}

type kept[V any] struct {
	v  V
	at time.Time
}

func newLastGood[K comparable, V any](maxAge time.Duration, now func() time.Time) *lastGood[K, V] {
	return &lastGood[K, V]{maxAge: maxAge, now: now, m: map[K]kept[V]{}}
}

// get asks the database through fetch; keep says whether an answer is
// worth keeping. When fetch fails for being unreachable, the kept answer
// stands in for it.
func (c *lastGood[K, V]) get(k K, fetch func() (V, error), keep func(V) bool) (V, error) {
	v, err := fetch()
	switch {
	case err == nil:
		c.mu.Lock()
		if keep(v) {
			c.m[k] = kept[V]{v: v, at: c.now()}
		} else {
			delete(c.m, k)
		}
		c.mu.Unlock()
		return v, nil
	case Unreachable(err):
		c.mu.Lock()
		old, ok := c.m[k]
		c.mu.Unlock()
		if ok && c.now().Sub(old.at) <= c.maxAge {
			return old.v, nil
		}
	}
	return v, err
}

// TrunkCache is a trunk directory that keeps recognising trunks while the
// database is unreachable.
type TrunkCache struct {
	dir       sb.TrunkDirectory
	bySource  *lastGood[netip.Addr, []*sb.Trunk]
	byName    *lastGood[string, *sb.Trunk]
	hasDigest *lastGood[struct{}, bool]
}

var _ sb.TrunkDirectory = (*TrunkCache)(nil)

// NewTrunkCache keeps dir's answers for up to maxAge of outage.
func NewTrunkCache(dir sb.TrunkDirectory, maxAge time.Duration, now func() time.Time) *TrunkCache {
	return &TrunkCache{
		dir:       dir,
		bySource:  newLastGood[netip.Addr, []*sb.Trunk](maxAge, now),
		byName:    newLastGood[string, *sb.Trunk](maxAge, now),
		hasDigest: newLastGood[struct{}, bool](maxAge, now),
	}
}

func (c *TrunkCache) TrunksForSource(ctx context.Context, addr netip.Addr) ([]*sb.Trunk, error) {
	return c.bySource.get(addr, func() ([]*sb.Trunk, error) { return c.dir.TrunksForSource(ctx, addr) },
		func(ts []*sb.Trunk) bool { return len(ts) > 0 })
}

func (c *TrunkCache) TrunkByUsername(ctx context.Context, username string) (*sb.Trunk, error) {
	return c.byName.get(username, func() (*sb.Trunk, error) { return c.dir.TrunkByUsername(ctx, username) },
		func(t *sb.Trunk) bool { return t != nil })
}

func (c *TrunkCache) HasDigestTrunks(ctx context.Context) (bool, error) {
	return c.hasDigest.get(struct{}{}, func() (bool, error) { return c.dir.HasDigestTrunks(ctx) },
		func(bool) bool { return true })
}

// QueueCache is a queue directory that keeps routing numbers to their
// queues while the database is unreachable.
type QueueCache struct {
	dir      sb.QueueDirectory
	byNumber *lastGood[numberKey, *sb.Queue]
}

type numberKey struct {
	tenant sb.ID
	number string
}

var _ sb.QueueDirectory = (*QueueCache)(nil)

// NewQueueCache keeps dir's answers for up to maxAge of outage.
func NewQueueCache(dir sb.QueueDirectory, maxAge time.Duration, now func() time.Time) *QueueCache {
	return &QueueCache{dir: dir, byNumber: newLastGood[numberKey, *sb.Queue](maxAge, now)}
}

// QueueForNumber answers for numbers that called before, queue or none
// (the caller already proved the number is one of its trunk's).
func (c *QueueCache) QueueForNumber(ctx context.Context, tenantID sb.ID, number string) (*sb.Queue, error) {
	return c.byNumber.get(numberKey{tenantID, number}, func() (*sb.Queue, error) { return c.dir.QueueForNumber(ctx, tenantID, number) },
		func(*sb.Queue) bool { return true })
}

func (c *QueueCache) QueueByID(ctx context.Context, tenantID, id sb.ID) (*sb.Queue, error) {
	return c.dir.QueueByID(ctx, tenantID, id)
}
