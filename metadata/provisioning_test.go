package metadata

import (
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// A queue with a call waiting in it is not deleted, by the CLI or by an
// admin through the API, even when the call was dialled to a number of no
// queue (a transfer or an overflow brought it there): the call's queued
// event names the queue. Once the call has ended the queue goes, and the
// refused attempt left no audit entry.
func TestDeleteQueueWhileACallWaitsInIt(t *testing.T) {
	for _, by := range []string{"cli", "api"} {
		t.Run(by, func(t *testing.T) {
			db := mustOpen(t)
			ctx := mustCtx(t)
			tenant := mustTenant(t, db, "Queued")
			q := &sb.Queue{TenantID: tenant.ID, Name: "billing", MaxWait: time.Minute, Overflow: sb.Overflow{Kind: sb.OverflowReject}}
			if err := NewQueueStore(db).CreateQueue(ctx, q); err != nil {
				t.Fatal(err)
			}
			calls := NewCallStore(db)
			c := &sb.Call{TenantID: tenant.ID, Direction: sb.Inbound, To: "2999", Status: sb.CallAnswered}
			if err := calls.CreateCall(ctx, c); err != nil {
				t.Fatal(err)
			}
			if err := calls.AddCallEvents(ctx, &sb.CallEvent{ID: sb.NewID(), CallID: c.ID, TenantID: tenant.ID, At: time.Now(), Type: sb.EventQueued,
				Detail: map[string]any{"queue_id": q.ID, "queue": q.Name, "transfer": true}}); err != nil {
				t.Fatal(err)
			}
			p := NewProvisioning(db)
			admin := sb.NewContextWithActor(ctx, &sb.Actor{TenantID: tenant.ID, UserID: sb.NewID(), Role: sb.RoleAdmin})
			del := func() error {
				if by == "api" {
					_, err := NewQueueAdmin(NewQueueStore(db)).DeleteQueue(admin, q.ID)
					return err
				}
				_, err := p.DeleteQueue(ctx, tenant.ID, q.ID,
					&sb.AuditEntry{TenantID: &tenant.ID, Action: "cli.queue_delete", ResourceType: "queue", ResourceID: q.ID.String()})
				return err
			}
			if err := del(); sb.ErrorCode(err) != sb.ECONFLICT {
				t.Fatalf("delete while a call waits in it: %v, want ECONFLICT", err)
			}
			now := time.Now()
			c.Status, c.EndedAt = sb.CallCompleted, &now
			if err := calls.UpdateCall(ctx, c); err != nil {
				t.Fatal(err)
			}
			if err := del(); err != nil {
				t.Fatalf("delete once the call has ended: %v", err)
			}
			if err := del(); sb.ErrorCode(err) != sb.ENOTFOUND {
				t.Errorf("delete again: %v, want ENOTFOUND", err)
			}
			if by == "api" {
				return // the API's audit is TestAdminsManageTrunksRoutesAndQueues's
			}
			entries, err := NewAuditLog(db).Recent(ctx, &tenant.ID, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || entries[0].Action != "cli.queue_delete" {
				t.Errorf("audit entries %d, want the one delete that was done", len(entries))
			}
		})
	}
}
