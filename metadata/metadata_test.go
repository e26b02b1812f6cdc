package metadata

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"io/fs"
	"net/netip"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// testTimeout bounds every test's database work, so a hung query fails the
// test instead of the whole run.
const testTimeout = 30 * time.Second

// mustCtx returns a context that ends with the test or after testTimeout.
func mustCtx(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), testTimeout)
	tb.Cleanup(cancel)
	return ctx
}

func mustOpen(tb testing.TB) *DB {
	tb.Helper()
	ctx := mustCtx(tb)
	db, err := Open(ctx, testenv.DatabaseURL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(db.Close)
	if err := db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	return db
}

func mustTenant(tb testing.TB, db *DB, name string) *sb.Tenant {
	tb.Helper()
	t := &sb.Tenant{Name: name}
	if err := NewTenantService(db).CreateTenant(mustCtx(tb), t); err != nil {
		tb.Fatal(err)
	}
	return t
}

func TestMigrateTwice(t *testing.T) {
	db := mustOpen(t)
	if err := db.Migrate(mustCtx(t)); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	files, _ := fs.Glob(migrations, "migrations/*.sql")
	var n int
	if err := db.pool.QueryRow(mustCtx(t), "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n != len(files) || n < 2 {
		t.Fatalf("schema_migrations has %d rows (%v), want one per migration (%d)", n, err, len(files))
	}
}

func TestUsersAndLogins(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	tenant := mustTenant(t, db, "Acme")
	users := NewUserService(db)
	u := &sb.User{TenantID: tenant.ID, Email: " Op@Acme.Test ", Role: sb.RoleOperator}
	if err := users.CreateUser(ctx, u, "long enough"); err != nil {
		t.Fatal(err)
	}
	if u.Email != "op@acme.test" || u.PasswordHash == "" || u.PasswordHash == "long enough" {
		t.Fatalf("stored email %q hash %q", u.Email, u.PasswordHash)
	}
	got, err := users.Authenticate(ctx, "OP@acme.test", "long enough")
	if err != nil || got.ID != u.ID {
		t.Fatalf("Authenticate = %v, %v", got, err)
	}
	_, errWrong := users.Authenticate(ctx, "op@acme.test", "wrong password")
	_, errUnknown := users.Authenticate(ctx, "nobody@acme.test", "long enough")
	for _, err := range []error{errWrong, errUnknown} {
		if sb.ErrorCode(err) != sb.EUNAUTHORIZED || sb.ErrorMessage(err) != "invalid email or password" {
			t.Errorf("failed login: %v", err)
		}
	}
	if err := users.CreateUser(ctx, &sb.User{TenantID: tenant.ID, Email: "op@acme.test", Role: sb.RoleAdmin}, "long enough"); sb.ErrorCode(err) != sb.ECONFLICT {
		t.Errorf("duplicate email: %v, want conflict", err)
	}
	if err := users.CreateUser(ctx, &sb.User{TenantID: tenant.ID, Email: "x@acme.test", Role: sb.RoleAdmin}, "short"); sb.ErrorCode(err) != sb.EINVALID {
		t.Errorf("short password: %v, want invalid", err)
	}
	if err := users.CreateUser(ctx, &sb.User{TenantID: sb.NewID(), Email: "y@acme.test", Role: sb.RoleAdmin}, "long enough"); sb.ErrorCode(err) != sb.ENOTFOUND {
		t.Errorf("unknown tenant: %v, want not found", err)
	}
	other := mustTenant(t, db, "Other")
	if _, err := users.FindUserByID(sb.NewContextWithActor(ctx, &sb.Actor{TenantID: other.ID, Role: sb.RoleAdmin}), u.ID); sb.ErrorCode(err) != sb.ENOTFOUND {
		t.Errorf("other tenant finds the user: %v", err)
	}

	keys := NewAPIKeyService(db)
	k, secret, err := keys.CreateAPIKey(ctx, tenant.ID, sb.RoleSupervisor)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := keys.AuthenticateAPIKey(ctx, secret); err != nil || got.ID != k.ID || got.Role != sb.RoleSupervisor || got.TenantID != tenant.ID {
		t.Fatalf("AuthenticateAPIKey = %+v, %v", got, err)
	}
	if _, err := keys.AuthenticateAPIKey(ctx, secret+"x"); sb.ErrorCode(err) != sb.EUNAUTHORIZED {
		t.Errorf("wrong key: %v", err)
	}

	sessions := NewSessionService(db)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	db.Now = func() time.Time { return now }
	token, _, err := sessions.CreateSession(ctx, u, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := sessions.FindSession(ctx, token); err != nil || s.UserID != u.ID || s.Role != sb.RoleOperator {
		t.Fatalf("FindSession = %+v, %v", s, err)
	}
	now = now.Add(61 * time.Minute)
	if _, err := sessions.FindSession(ctx, token); sb.ErrorCode(err) != sb.EUNAUTHORIZED {
		t.Errorf("expired session: %v", err)
	}
	now = now.Add(-30 * time.Minute)
	if err := sessions.DeleteSession(ctx, token); err != nil {
		t.Fatal(err)
	}
	if _, err := sessions.FindSession(ctx, token); sb.ErrorCode(err) != sb.EUNAUTHORIZED {
		t.Errorf("deleted session: %v", err)
	}
}

func TestTrunks(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	tenant := mustTenant(t, db, "Acme")
	trunks := NewTrunkService(db)
	ip := &sb.Trunk{TenantID: tenant.ID, Name: "pbx", Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("192.0.2.0/24")}, Numbers: []string{"+4930123", "100"}}
	if err := trunks.CreateTrunk(ctx, ip, ""); err != nil {
		t.Fatal(err)
	}
	got, err := trunks.TrunksForSource(ctx, netip.MustParseAddr("192.0.2.77"))
	if err != nil || len(got) != 1 || got[0].ID != ip.ID || len(got[0].Numbers) != 2 || !got[0].HasNumber("+4930123") {
		t.Fatalf("TrunksForSource = %+v, %v", got, err)
	}
	if got, _ := trunks.TrunksForSource(ctx, netip.MustParseAddr("10.0.0.1")); len(got) != 0 {
		t.Errorf("10.0.0.1 matched %d trunks", len(got))
	}
	if has, _ := trunks.HasDigestTrunks(ctx); has {
		t.Error("HasDigestTrunks with none")
	}
	digest := &sb.Trunk{TenantID: tenant.ID, Name: "carrier", Username: "acme", Numbers: []string{"200"}}
	if err := trunks.CreateTrunk(ctx, digest, "secret"); err != nil {
		t.Fatal(err)
	}
	if d, err := trunks.TrunkByUsername(ctx, "acme"); err != nil || d.DigestHA1 != md5hex("acme:switchboard:secret") {
		t.Fatalf("TrunkByUsername = %+v, %v", d, err)
	}
	if has, _ := trunks.HasDigestTrunks(ctx); !has {
		t.Error("HasDigestTrunks is false with a digest trunk")
	}
	dup := &sb.Trunk{TenantID: tenant.ID, Name: "other", Allow: ip.Allow, Numbers: []string{"100"}}
	if err := trunks.CreateTrunk(ctx, dup, ""); sb.ErrorCode(err) != sb.ECONFLICT {
		t.Errorf("taken number: %v, want conflict", err)
	}
	if err := trunks.CreateTrunk(ctx, &sb.Trunk{TenantID: tenant.ID, Name: "bad", Allow: ip.Allow, Numbers: []string{"12a"}}, ""); sb.ErrorCode(err) != sb.EINVALID {
		t.Errorf("bad number: %v, want invalid", err)
	}
}

func TestCallsRoundTripAndScope(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	a, b := mustTenant(t, db, "A"), mustTenant(t, db, "B")
	store := NewCallStore(db)
	opA, opB := sb.NewID(), sb.NewID()
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var ids []sb.ID
	for i := 0; i < 7; i++ {
		op := opA
		if i%2 == 1 {
			op = opB
		}
		c := &sb.Call{TenantID: a.ID, Direction: sb.Inbound, From: "300" + string(rune('0'+i)), To: "2000", Source: "udp:127.0.0.1:5060",
			Status: sb.CallRinging, CreatedAt: base.Add(time.Duration(i) * time.Minute)}
		if err := store.CreateCall(ctx, c); err != nil {
			t.Fatal(err)
		}
		answered, ended := c.CreatedAt.Add(time.Second), c.CreatedAt.Add(time.Minute/2)
		c.OperatorID, c.Status, c.HangupBy, c.SIPCode, c.Codec = &op, sb.CallCompleted, sb.PartyCaller, 200, "PCMU"
		c.AnsweredAt, c.EndedAt, c.DurationMS = &answered, &ended, 29000
		c.FromCaller = sb.MediaStats{Packets: 1450, Bytes: 232000, Lost: 2, JitterMS: 1.5}
		c.ToCaller = sb.MediaStats{Packets: 1449, Bytes: 231840, Lost: -1, JitterMS: 0.25}
		if err := store.UpdateCall(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := store.AddCallEvents(ctx, &sb.CallEvent{CallID: c.ID, TenantID: a.ID, Type: sb.EventReceived, At: c.CreatedAt},
			&sb.CallEvent{CallID: c.ID, TenantID: a.ID, Type: sb.EventAnswered, At: answered, Detail: map[string]any{"operator_id": op.String()}}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	supA := sb.NewContextWithActor(ctx, &sb.Actor{TenantID: a.ID, Role: sb.RoleSupervisor})
	got, err := store.FindCallByID(supA, ids[3])
	if err != nil {
		t.Fatal(err)
	}
	if got.From != "3003" || got.Status != sb.CallCompleted || got.OperatorID == nil || *got.OperatorID != opB ||
		got.FromCaller.Packets != 1450 || got.ToCaller.Lost != -1 || got.ToCaller.JitterMS != 0.25 || !got.EndedAt.Equal(base.Add(3*time.Minute+30*time.Second)) {
		t.Errorf("round trip: %+v", got)
	}
	events, err := store.FindCallEvents(supA, ids[3])
	if err != nil || len(events) != 2 || events[0].Type != sb.EventReceived || events[1].Detail["operator_id"] != opB.String() {
		t.Errorf("events: %+v, %v", events, err)
	}

	// Pagination: pages of 3 cover all 7 calls once, newest first.
	seen := map[sb.ID]bool{}
	var after *sb.ID
	var order []sb.ID
	for page := 0; page < 5; page++ {
		calls, err := store.FindCalls(supA, sb.CallFilter{Limit: 3, After: after})
		if err != nil {
			t.Fatal(err)
		}
		if len(calls) == 0 {
			break
		}
		for _, c := range calls {
			if seen[c.ID] {
				t.Fatalf("call %s on two pages", c.ID)
			}
			seen[c.ID] = true
			order = append(order, c.ID)
		}
		after = &calls[len(calls)-1].ID
	}
	if len(order) != 7 || order[0] != ids[6] || order[6] != ids[0] {
		t.Errorf("pages gave %d calls in order %v", len(order), order)
	}
	since, until := base.Add(2*time.Minute), base.Add(5*time.Minute)
	if calls, _ := store.FindCalls(supA, sb.CallFilter{Since: &since, Until: &until}); len(calls) != 3 {
		t.Errorf("time range: %d calls, want 3", len(calls))
	}
	if calls, _ := store.FindCalls(supA, sb.CallFilter{Number: "3004"}); len(calls) != 1 || calls[0].ID != ids[4] {
		t.Errorf("number filter: %v", calls)
	}
	if calls, _ := store.FindCalls(supA, sb.CallFilter{Status: sb.CallCanceled}); len(calls) != 0 {
		t.Errorf("status filter: %d calls", len(calls))
	}
	if calls, _ := store.FindCalls(supA, sb.CallFilter{OperatorID: &opB}); len(calls) != 3 {
		t.Errorf("operator filter: %d calls, want 3", len(calls))
	}

	// An operator sees their own calls only.
	asOpA := sb.NewContextWithActor(ctx, &sb.Actor{TenantID: a.ID, UserID: opA, Role: sb.RoleOperator})
	if calls, _ := store.FindCalls(asOpA, sb.CallFilter{}); len(calls) != 4 {
		t.Errorf("operator A sees %d calls, want 4", len(calls))
	}
	if _, err := store.FindCallByID(asOpA, ids[3]); sb.ErrorCode(err) != sb.ENOTFOUND {
		t.Errorf("operator A reads B's call: %v", err)
	}

	// Another tenant sees nothing.
	supB := sb.NewContextWithActor(ctx, &sb.Actor{TenantID: b.ID, Role: sb.RoleAdmin})
	if calls, _ := store.FindCalls(supB, sb.CallFilter{}); len(calls) != 0 {
		t.Errorf("tenant B lists %d of A's calls", len(calls))
	}
	for _, err := range []error{
		func() error { _, err := store.FindCallByID(supB, ids[0]); return err }(),
		func() error { _, err := store.FindCallEvents(supB, ids[0]); return err }(),
	} {
		if sb.ErrorCode(err) != sb.ENOTFOUND {
			t.Errorf("tenant B reads A's call: %v", err)
		}
	}
	if _, err := store.FindCalls(ctx, sb.CallFilter{}); sb.ErrorCode(err) != sb.EUNAUTHORIZED {
		t.Errorf("no actor: %v", err)
	}
}

func BenchmarkAddCallEvents(b *testing.B) {
	db := mustOpen(b)
	ctx := context.Background()
	tenant := mustTenant(b, db, "Bench")
	store := NewCallStore(db)
	c := &sb.Call{TenantID: tenant.ID, Direction: sb.Inbound, Status: sb.CallRinging}
	if err := store.CreateCall(ctx, c); err != nil {
		b.Fatal(err)
	}
	types := []sb.EventType{sb.EventReceived, sb.EventTrying, sb.EventOffered, sb.EventRinging, sb.EventAnswered, sb.EventEnded}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		events := make([]*sb.CallEvent, len(types))
		for j, ty := range types {
			events[j] = &sb.CallEvent{CallID: c.ID, TenantID: tenant.ID, Type: ty}
		}
		if err := store.AddCallEvents(ctx, events...); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCreateCall(b *testing.B) {
	db := mustOpen(b)
	ctx := context.Background()
	tenant := mustTenant(b, db, "Bench")
	store := NewCallStore(db)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := &sb.Call{TenantID: tenant.ID, Direction: sb.Inbound, From: "3000", To: "2000", Status: sb.CallRinging}
		if err := store.CreateCall(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}
