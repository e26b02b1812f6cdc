package metadata

import (
	"context"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// grantWorld is a tenant with a recorded call, a support engineer and an
// admin, on a database whose clock the test moves.
type grantWorld struct {
	db                *DB
	now               time.Time
	tenant            *sb.Tenant
	support, admin    *sb.Actor
	supervisor, other *sb.Actor
	callID            sb.ID
	grants            *GrantStore
}

func newGrantWorld(t *testing.T, p sb.SupportPolicy) *grantWorld {
	t.Helper()
	w := &grantWorld{db: mustOpen(t), now: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)}
	w.db.Now = func() time.Time { return w.now }
	ctx := mustCtx(t)
	w.tenant = mustTenant(t, w.db, "Acme")
	if err := NewTenantService(w.db).SetSupportPolicy(ctx, w.tenant.ID, p); err != nil {
		t.Fatal(err)
	}
	role := func(r sb.Role) *sb.Actor {
		u := &sb.User{TenantID: w.tenant.ID, Email: string(r) + "-" + sb.NewID().String() + "@acme.test", Role: r}
		if err := NewUserService(w.db).CreateUser(ctx, u, "long enough password"); err != nil {
			t.Fatal(err)
		}
		return &sb.Actor{TenantID: w.tenant.ID, UserID: u.ID, Role: r, IP: "192.0.2.7"}
	}
	w.support, w.admin, w.supervisor, w.other = role(sb.RoleSupport), role(sb.RoleAdmin), role(sb.RoleSupervisor), role(sb.RoleSupport)
	c := &sb.Call{ID: sb.NewID(), TenantID: w.tenant.ID, Direction: sb.Inbound, Status: sb.CallCompleted, CreatedAt: w.now}
	if err := NewCallStore(w.db).CreateCall(ctx, c); err != nil {
		t.Fatal(err)
	}
	w.callID = c.ID
	rec := &sb.Recording{ID: sb.NewID(), TenantID: w.tenant.ID, CallID: c.ID, Status: sb.RecordingComplete, Codec: "PCMU",
		ClockRate: 8000, StartedAt: w.now, Consent: sb.Consent{Given: true, Mechanism: sb.ConsentAPI, At: w.now, Policy: sb.RecordWithConsent},
		ObjectKey: "k", KeyVersion: 1, WrappedKey: []byte("wrapped")}
	if err := NewRecordingStore(w.db).CreateRecording(ctx, rec); err != nil {
		t.Fatal(err)
	}
	w.grants = NewGrantStore(w.db)
	return w
}

func (w *grantWorld) as(t *testing.T, a *sb.Actor) context.Context {
	return sb.NewContextWithActor(mustCtx(t), a)
}

// A grant expires on time by the injected clock: its use is refused, and
// the sweep ends it and audits the expiry once.
func TestGrantExpiresOnTime(t *testing.T) {
	w := newGrantWorld(t, sb.SupportPolicy{Access: true, MaxTTLSeconds: 3600})
	ctx := w.as(t, w.support)
	g, err := w.grants.RequestGrant(ctx, sb.GrantRequest{CallID: w.callID, Reason: "dropped audio", Ticket: "SUP-1", TTL: 10 * time.Minute})
	if err != nil || g.Status != sb.GrantApproved || !g.ExpiresAt.Equal(w.now.Add(10*time.Minute)) {
		t.Fatalf("request: %+v, %v", g, err)
	}
	w.now = w.now.Add(10*time.Minute - time.Second)
	if _, rec, err := w.grants.UseGrant(ctx, g.ID, sb.AccessPlay, "bytes=0-"); err != nil || rec.ObjectKey != "k" {
		t.Fatalf("use a second before expiry: %v", err)
	}
	if err := w.grants.CheckGrant(ctx, g.ID); err != nil {
		t.Fatalf("check a second before expiry: %v", err)
	}
	w.now = w.now.Add(time.Second)
	if err := w.grants.CheckGrant(ctx, g.ID); sb.ErrorCode(err) != sb.EFORBIDDEN {
		t.Fatalf("check at expiry: %v", err)
	}
	if n, err := w.grants.ExpireGrants(mustCtx(t)); err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v", n, err)
	}
	if n, err := w.grants.ExpireGrants(mustCtx(t)); err != nil || n != 0 {
		t.Fatalf("second sweep: %d, %v", n, err)
	}
	if _, _, err := w.grants.UseGrant(ctx, g.ID, sb.AccessPlay, "bytes=0-"); sb.ErrorCode(err) != sb.EFORBIDDEN {
		t.Fatalf("use after expiry: %v", err)
	}
	got, err := w.grants.FindGrantByID(ctx, g.ID)
	if err != nil || got.Status != sb.GrantExpired {
		t.Fatalf("after the sweep: %+v, %v", got, err)
	}
	entries := w.actions(t)
	want := []string{"grant.request", "recording.play ok", "grant.expire", "recording.play denied"}
	if len(entries) != len(want) {
		t.Fatalf("audit %v, want %v", entries, want)
	}
	for i := range want {
		if entries[i] != want[i] {
			t.Errorf("audit %v, want %v", entries, want)
			break
		}
	}
}

// actions lists the tenant's audit entries oldest first, with the
// outcome of recording accesses.
func (w *grantWorld) actions(t *testing.T) []string {
	t.Helper()
	entries, err := NewAuditLog(w.db).Recent(mustCtx(t), &w.tenant.ID, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		s := e.Action
		if e.ResourceType == "recording" {
			s += " " + e.Outcome
		}
		out = append(out, s)
	}
	return out
}

// When the tenant requires it, a grant waits for a second person; the
// requester cannot approve it, a pending request lapses, a denied one is
// never usable, and one engineer never sees or uses another's grant.
func TestGrantApprovalAndScope(t *testing.T) {
	w := newGrantWorld(t, sb.SupportPolicy{Access: true, Approval: true, MaxTTLSeconds: 1800})
	support := w.as(t, w.support)
	req := sb.GrantRequest{CallID: w.callID, Reason: "no audio from caller", Ticket: "SUP-2"}
	if _, err := w.grants.RequestGrant(support, sb.GrantRequest{CallID: w.callID, Reason: "r", Ticket: "t", TTL: time.Hour}); sb.ErrorCode(err) != sb.EINVALID {
		t.Errorf("longer than the tenant's ceiling: %v", err)
	}
	if _, err := w.grants.RequestGrant(support, sb.GrantRequest{CallID: w.callID, Reason: "r", Ticket: "t", Download: true}); sb.ErrorCode(err) != sb.EFORBIDDEN {
		t.Errorf("download where the tenant allows none: %v", err)
	}
	if _, err := w.grants.RequestGrant(w.as(t, w.supervisor), req); sb.ErrorCode(err) != sb.EFORBIDDEN {
		t.Errorf("a supervisor asking: %v", err)
	}
	if _, err := w.grants.RequestGrant(w.as(t, &sb.Actor{TenantID: w.tenant.ID, APIKeyID: sb.NewID(), Role: sb.RoleAdmin}), req); sb.ErrorCode(err) != sb.EFORBIDDEN {
		t.Errorf("an admin API key asking: %v", err)
	}
	g, err := w.grants.RequestGrant(support, req)
	if err != nil || g.Status != sb.GrantPending || g.TTLSeconds != 900 {
		t.Fatalf("request: %+v, %v", g, err)
	}
	if _, _, err := w.grants.UseGrant(support, g.ID, sb.AccessPlay, ""); sb.ErrorCode(err) != sb.EFORBIDDEN {
		t.Errorf("use while pending: %v", err)
	}
	admin := w.as(t, w.admin)
	adminsOwn, err := w.grants.RequestGrant(admin, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.grants.DecideGrant(admin, adminsOwn.ID, true); sb.ErrorCode(err) != sb.EFORBIDDEN {
		t.Errorf("an admin approving their own request: %v", err)
	}
	w.now = w.now.Add(time.Hour)
	approved, err := w.grants.DecideGrant(w.as(t, w.supervisor), g.ID, true)
	if err != nil || approved.Status != sb.GrantApproved || !approved.ExpiresAt.Equal(w.now.Add(15*time.Minute)) {
		t.Fatalf("approve: %+v, %v", approved, err)
	}
	other := w.as(t, w.other)
	if _, _, err := w.grants.UseGrant(other, g.ID, sb.AccessPlay, ""); sb.ErrorCode(err) != sb.ENOTFOUND {
		t.Errorf("another engineer using the grant: %v", err)
	}
	if _, err := w.grants.FindGrantByID(other, g.ID); sb.ErrorCode(err) != sb.ENOTFOUND {
		t.Errorf("another engineer reading the grant: %v", err)
	}
	if mine, err := w.grants.FindGrants(other, sb.GrantFilter{}); err != nil || len(mine) != 0 {
		t.Errorf("another engineer's list: %d, %v", len(mine), err)
	}
	if all, err := w.grants.FindGrants(admin, sb.GrantFilter{Status: sb.GrantPending}); err != nil || len(all) != 1 || all[0].ID != adminsOwn.ID {
		t.Errorf("admin's pending list: %+v, %v", all, err)
	}
	if _, _, err := w.grants.UseGrant(support, g.ID, sb.AccessDownload, ""); sb.ErrorCode(err) != sb.EFORBIDDEN {
		t.Errorf("download with a play grant: %v", err)
	}
	denied, err := w.grants.RequestGrant(support, req)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := w.grants.DecideGrant(admin, denied.ID, false); err != nil || d.Status != sb.GrantDenied {
		t.Fatalf("deny: %+v, %v", d, err)
	}
	if _, _, err := w.grants.UseGrant(support, denied.ID, sb.AccessPlay, ""); sb.ErrorCode(err) != sb.EFORBIDDEN {
		t.Errorf("use a denied grant: %v", err)
	}
	w.now = w.now.Add(25 * time.Hour)
	if _, err := w.grants.DecideGrant(w.as(t, w.supervisor), adminsOwn.ID, true); sb.ErrorCode(err) != sb.ECONFLICT {
		t.Errorf("approving a lapsed request: %v", err)
	}
	if broken, err := NewAuditLog(w.db).Verify(mustCtx(t)); err != nil || broken != 0 {
		t.Errorf("audit chain broken at %d: %v", broken, err)
	}
}

// Someone of the tenant other than the holder who asks for a grant's audio
// (another engineer, an admin, a supervisor, an operator, an API key) is
// refused and audited, told what they would be told of a grant that does
// not exist; another tenant's person, or a grant that does not exist,
// leaves no entry anywhere.
func TestOthersAskingForAGrantAreAudited(t *testing.T) {
	w := newGrantWorld(t, sb.SupportPolicy{Access: true, MaxTTLSeconds: 3600})
	ctx := mustCtx(t)
	g, err := w.grants.RequestGrant(w.as(t, w.support), sb.GrantRequest{CallID: w.callID, Reason: "no audio from caller", Ticket: "SUP-3"})
	if err != nil || g.Status != sb.GrantApproved {
		t.Fatalf("request: %+v, %v", g, err)
	}
	op := &sb.User{TenantID: w.tenant.ID, Email: "operator@acme.test", Role: sb.RoleOperator}
	if err := NewUserService(w.db).CreateUser(ctx, op, "long enough password"); err != nil {
		t.Fatal(err)
	}
	operator := &sb.Actor{TenantID: w.tenant.ID, UserID: op.ID, Role: sb.RoleOperator, IP: "192.0.2.8"}
	key := &sb.Actor{TenantID: w.tenant.ID, APIKeyID: sb.NewID(), Role: sb.RoleAdmin, IP: "192.0.2.9"}
	others := []struct {
		name string
		a    *sb.Actor
	}{{"another engineer", w.other}, {"an admin", w.admin}, {"a supervisor", w.supervisor}, {"an operator", operator}, {"an admin API key", key}}
	for _, o := range others {
		_, _, err := w.grants.UseGrant(w.as(t, o.a), g.ID, sb.AccessPlay, "whole file")
		_, _, missing := w.grants.UseGrant(w.as(t, o.a), sb.NewID(), sb.AccessPlay, "whole file")
		if code := sb.ErrorCode(err); (code != sb.ENOTFOUND && code != sb.EFORBIDDEN) || code != sb.ErrorCode(missing) || sb.ErrorMessage(err) != sb.ErrorMessage(missing) {
			t.Errorf("%s: %v; for a grant that does not exist: %v", o.name, err, missing)
		}
	}
	stranger := mustTenant(t, w.db, "Other")
	otherAdmin := &sb.Actor{TenantID: stranger.ID, UserID: sb.NewID(), Role: sb.RoleAdmin}
	if _, _, err := w.grants.UseGrant(w.as(t, otherAdmin), g.ID, sb.AccessPlay, ""); sb.ErrorCode(err) != sb.ENOTFOUND {
		t.Errorf("another tenant's admin: %v", err)
	}
	if n := len(recordingEntries(t, w.db, stranger.ID)); n != 0 {
		t.Errorf("%d entries on the other tenant's log", n)
	}
	entries := recordingEntries(t, w.db, w.tenant.ID)
	if len(entries) != len(others) {
		t.Fatalf("%d recording entries, want one for each of %d others", len(entries), len(others))
	}
	for i, o := range others {
		e := entries[i]
		if e.Action != "recording.play" || e.Outcome != "denied" || e.ActorRole != o.a.Role || e.IP != o.a.IP ||
			e.ResourceID != g.RecordingID.String() || !strings.Contains(e.Detail, g.ID.String()) || e.Ticket != "" || e.Reason != "not the grant's holder" {
			t.Errorf("%s: %+v", o.name, e)
		}
		if o.a.UserID != (sb.ID{}) && (e.ActorUserID == nil || *e.ActorUserID != o.a.UserID) ||
			o.a.APIKeyID != (sb.ID{}) && (e.ActorKeyID == nil || *e.ActorKeyID != o.a.APIKeyID) {
			t.Errorf("%s: the entry names %v / %v", o.name, e.ActorUserID, e.ActorKeyID)
		}
	}
	if broken, err := NewAuditLog(w.db).Verify(ctx); err != nil || broken != 0 {
		t.Errorf("audit chain broken at %d: %v", broken, err)
	}
}

// recordingEntries are the tenant's audit entries on recordings, oldest
// first.
func recordingEntries(t *testing.T, db *DB, tenantID sb.ID) []*sb.AuditEntry {
	t.Helper()
	all, err := NewAuditLog(db).Recent(mustCtx(t), &tenantID, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []*sb.AuditEntry
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].ResourceType == "recording" {
			out = append(out, all[i])
		}
	}
	return out
}
