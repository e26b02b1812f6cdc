package metadata

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// trunkDir answers from a map, or fails as told.
type trunkDir struct {
	trunks map[netip.Addr][]*sb.Trunk
	err    error
}

func (d *trunkDir) TrunksForSource(_ context.Context, a netip.Addr) ([]*sb.Trunk, error) {
	return d.trunks[a], d.err
}
func (d *trunkDir) TrunkByUsername(context.Context, string) (*sb.Trunk, error) {
	return nil, sb.Errorf(sb.ENOTFOUND, "no such trunk")
}
func (d *trunkDir) HasDigestTrunks(context.Context) (bool, error) { return false, d.err }

// The cache answers from what it last read only while the database is
// unreachable, only for what it found, and only up to its age; a refusal
// by the database is passed on.
func TestTrunkCacheDuringAnOutage(t *testing.T) {
	pbx, scanner := netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("198.51.100.66")
	trunk := &sb.Trunk{ID: sb.NewID(), Name: "pbx"}
	dir := &trunkDir{trunks: map[netip.Addr][]*sb.Trunk{pbx: {trunk}}}
	now := time.Unix(1_700_000_000, 0)
	c := NewTrunkCache(dir, time.Hour, func() time.Time { return now })
	ctx := context.Background()
	for _, a := range []netip.Addr{pbx, scanner} {
		if _, err := c.TrunksForSource(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.HasDigestTrunks(ctx); err != nil {
		t.Fatal(err)
	}

	dir.err = errors.New("dial tcp 127.0.0.1:5432: connect: connection refused") // unreachable
	now = now.Add(59 * time.Minute)
	if got, err := c.TrunksForSource(ctx, pbx); err != nil || len(got) != 1 || got[0] != trunk {
		t.Errorf("the known trunk during the outage: %v, %v", got, err)
	}
	if got, err := c.TrunksForSource(ctx, scanner); err == nil {
		t.Errorf("a source that matched nothing before: %v, want the outage's error", got)
	}
	if _, err := c.HasDigestTrunks(ctx); err != nil {
		t.Errorf("HasDigestTrunks during the outage: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := c.TrunksForSource(ctx, pbx); err == nil {
		t.Error("an answer older than the cache's age still stood in")
	}

	dir.err = sb.Errorf(sb.EINVALID, "refused") // the database answered: no stand-in
	if _, err := c.TrunksForSource(ctx, pbx); sb.ErrorCode(err) != sb.EINVALID {
		t.Errorf("a refusal became %v", err)
	}
}
