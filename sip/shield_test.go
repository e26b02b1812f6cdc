package sip

import (
	"net/netip"
	"testing"
	"time"
)

func TestShield(t *testing.T) {
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	var bans []string
	s := newShield(ShieldConfig{Rate: 10, Failures: 3, BanFor: time.Minute}, func() time.Time { return now },
		func(a netip.Addr, reason string) { bans = append(bans, a.String()+" "+reason) })
	flood, scanner, trunk := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("::ffff:192.0.2.3")

	admitted := 0
	for range 25 {
		if s.admit(flood) {
			admitted++
		}
	}
	if admitted != 20 {
		t.Errorf("a burst of 25 let %d in, want the bucket's 20", admitted)
	}
	now = now.Add(500 * time.Millisecond)
	if admitted = 0; true {
		for range 10 {
			if s.admit(flood) {
				admitted++
			}
		}
	}
	if admitted != 5 {
		t.Errorf("half a second later %d let in, want 5 at 10/s", admitted)
	}
	for range floodDrops {
		s.admit(flood)
	}
	if len(bans) != 1 || bans[0] != "192.0.2.1 flood" || s.banned() != 1 {
		t.Fatalf("after a flood: bans %v, %d banned", bans, s.banned())
	}
	now = now.Add(10 * time.Second)
	if s.admit(flood) {
		t.Error("a banned source was let in")
	}

	for range 2 {
		s.failed(scanner)
	}
	if !s.admit(scanner) {
		t.Error("two failures banned the source")
	}
	s.failed(scanner)
	if s.admit(scanner) || len(bans) != 2 {
		t.Errorf("three failures in a minute did not ban: %v", bans)
	}

	s.trust(trunk)
	for range 500 {
		if !s.admit(trunk.Unmap()) {
			t.Fatal("a trusted trunk was rate-limited")
		}
	}
	for range 5 {
		s.failed(trunk)
	}
	if !s.admit(trunk) {
		t.Error("a trusted trunk's wrong passwords banned it")
	}

	now = now.Add(2 * time.Minute)
	if !s.admit(flood) || !s.admit(scanner) || s.banned() != 0 {
		t.Errorf("bans outlived their minute: %d banned", s.banned())
	}
	if d := s.dropped.Load(); d < floodDrops {
		t.Errorf("%d dropped counted", d)
	}
}
