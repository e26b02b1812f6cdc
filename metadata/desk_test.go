package metadata

import (
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// The desk reads as the operator, in their tenant only: a support
// engineer is refused, another tenant's call is missing, and another
// tenant's calls from the same number are no earlier calls.
func TestDeskIsTheOperatorsTenantOnly(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	a, b := mustTenant(t, db, "A"), mustTenant(t, db, "B")
	calls, desk := NewCallStore(db), NewDeskStore(db)
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	call := func(tenant sb.ID, at time.Duration) sb.ID {
		c := &sb.Call{TenantID: tenant, Direction: sb.Inbound, From: "+15550001234", To: "2000", Source: "udp:127.0.0.1:5060",
			Status: sb.CallCompleted, CreatedAt: base.Add(at)}
		if err := calls.CreateCall(ctx, c); err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	earlier, theirs, now := call(a.ID, 0), call(b.ID, time.Minute), call(a.ID, 2*time.Minute)
	op := &sb.Actor{TenantID: a.ID, UserID: sb.NewID(), Role: sb.RoleOperator}
	opCtx := sb.NewContextWithActor(ctx, op)

	info, err := desk.Caller(opCtx, now, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Earlier) != 1 || info.Earlier[0].CallID != earlier || info.From != "+15550001234" || info.Channel != "phone" {
		t.Errorf("caller %+v, want the tenant's one earlier call", info)
	}
	if _, err := desk.Caller(opCtx, theirs, 5); sb.ErrorCode(err) != sb.ENOTFOUND {
		t.Errorf("another tenant's call: %v, want not found", err)
	}
	support := sb.NewContextWithActor(ctx, &sb.Actor{TenantID: a.ID, UserID: sb.NewID(), Role: sb.RoleSupport})
	if _, err := desk.Caller(support, now, 5); sb.ErrorCode(err) != sb.EFORBIDDEN {
		t.Errorf("a support engineer read a caller: %v, want forbidden", err)
	}
	if _, _, err := desk.Colleagues(support); sb.ErrorCode(err) != sb.EFORBIDDEN {
		t.Errorf("a support engineer listed colleagues: %v, want forbidden", err)
	}
	if recent, err := desk.Recent(opCtx, 10); err != nil || len(recent) != 0 {
		t.Errorf("recent calls of an operator no call reached: %v %v", recent, err)
	}
}
